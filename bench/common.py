"""What every benchmark shares: a dedicated PostgreSQL database, fast seeding, timing and printing.

Importing this module sets Django up (call nothing first):

- the database is `gantry_bench` on 127.0.0.1:5432 (created if missing), or BENCH_DATABASE_URL
  when set. A benchmark WIPES it (`reset()`), so never point BENCH_DATABASE_URL at real data;
- DEBUG=1; REDIS_URL is 127.0.0.1:6379 db 14 when that answers (BENCH_REDIS_URL overrides).
  GANTRY_JOBS_EAGER is removed from the environment: jobs are only rows, nothing runs;
- `migrate` runs; a session-level advisory lock serialises bench processes sharing the database,
  so two benchmarks started at once wait for each other instead of wiping each other's data.

Then a benchmark: `reset()`, seeds with the helpers below (bulk_create; audit events in bulk with
a correctly computed hash chain, checked once by `verify_audit_chain()`), logs in with
`client_for(user)`, and calls `measure(client, url, n)` / `print_table(...)`.

Figures are printed, never asserted (DESIGN.md, "Tests and measurements").
"""
import hashlib
import os
import re
import statistics
import sys
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from portal.throwaway import port_open  # noqa: E402  (the repository on the path first; imports no Django)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gantry_bench"
BENCH_LOCK_ID = 0x67626E63  # "gbnc": one bench process at a time per database


def _admin_url(url):
    """The same server and credentials, database `postgres` (to CREATE DATABASE from)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.replace("postgresql", "postgres"), parts.netloc, "/postgres", parts.query, ""))


def ensure_database(url):
    """Create the benchmark database when it does not exist yet (psycopg, autocommit)."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    try:
        with psycopg.connect(url, connect_timeout=5):
            return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise SystemExit(f"bench: cannot reach PostgreSQL at {url}: {exc}\n"
                             "Start one on 127.0.0.1:5432 or set BENCH_DATABASE_URL.") from None
    with psycopg.connect(_admin_url(url), autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"bench: created database {name}", file=sys.stderr)


_lock_connection = None
_ready = False


def _take_bench_lock(url):
    """Hold a session advisory lock for the life of this process (released when it exits)."""
    global _lock_connection
    import psycopg

    _lock_connection = psycopg.connect(url, autocommit=True)
    if not _lock_connection.execute("SELECT pg_try_advisory_lock(%s)", [BENCH_LOCK_ID]).fetchone()[0]:
        print("bench: another benchmark is using this database; waiting for it to finish...", file=sys.stderr)
        _lock_connection.execute("SELECT pg_advisory_lock(%s)", [BENCH_LOCK_ID])


def setup():
    """Point Django at the benchmark database and Redis, run migrate. Idempotent."""
    global _ready
    if _ready:
        return
    url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    ensure_database(url)
    _take_bench_lock(url)
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "1"
    os.environ.pop("GANTRY_JOBS_EAGER", None)
    os.environ.setdefault("GANTRY_LOG_LEVEL", "ERROR")  # 403/404 warnings would drown the figures
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    if os.environ.get("BENCH_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    elif port_open(6379):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/14"
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"

    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"bench: database {urlsplit(url).path.lstrip('/')} migrated in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    _ready = True


setup()

# Django is ready from here on.
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

User = get_user_model()


# ------------------------------------------------------------------ data

def reset():
    """Empty every table of the benchmark database (TRUNCATE ... RESTART IDENTITY CASCADE)."""
    tables = [t for t in connection.introspection.django_table_names(only_existing=True, include_views=False)
              if t != "django_migrations"]
    with connection.cursor() as cursor:
        # audit events refuse TRUNCATE unless the session says so (as the test suite's flush does)
        cursor.execute("SELECT set_config('gantry.audit_truncate', 'allow', false)")
        cursor.execute("TRUNCATE {} RESTART IDENTITY CASCADE".format(", ".join(connection.ops.quote_name(t)
                                                                               for t in tables)))
    # content types / permissions are recreated lazily by whoever needs them; Gantry does not.


@contextmanager
def step(label):
    """Print how long a seeding step took (to stderr, so stdout stays the figures)."""
    started = time.perf_counter()
    yield
    print(f"bench: {label} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def fake_digest(*parts):
    return "sha256:" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def make_users(specs):
    """specs: [(username, [role or (role, environment), ...]), ...] -> {username: user}.

    Users get an unusable password (benchmarks log in with force_login; hashing is slow on purpose).
    """
    from portal.accounts.models import RoleAssignment

    users = User.objects.bulk_create([User(username=name, is_active=True, password="!") for name, _ in specs])
    by_name = {u.username: u for u in users}
    grants = []
    for name, roles in specs:
        for role in roles:
            role, env = role if isinstance(role, tuple) else (role, None)
            grants.append(RoleAssignment(user=by_name[name], role=role, environment=env))
    RoleAssignment.objects.bulk_create(grants)
    return by_name


def make_cluster(name="sandbox", sandbox=True):
    from environments.models import Cluster

    return Cluster.objects.create(name=name, mode="server", server="http://127.0.0.1:1", is_sandbox=sandbox,
                                  last_check_ok=True, last_checked_at=timezone.now(), server_version="v1.30.0")


PRODUCTION_WINDOWS = [{"days": ["mon", "tue", "wed", "thu"], "start": "02:00", "end": "04:00", "timezone": "Asia/Seoul"}]
STAGING_WINDOWS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "02:00", "end": "04:00",
                    "timezone": "Asia/Seoul"}]


def make_environments(specs, cluster):
    """specs: [{"slug", "tier", ...Environment fields}] -> list of environments (bulk_create).

    Protection rules follow the demo's: production 2 approvals, no self-approval, a night window;
    staging 1 approval and a window; development and preview none.
    """
    from environments.models import Environment

    envs = []
    for spec in specs:
        spec = dict(spec)
        tier = spec["tier"]
        defaults = {
            "name": spec["slug"].replace("-", " ").title(),
            "namespace": spec["slug"],
            "status": "ready",
            "team": "platform",
            "required_approvals": {"production": 2, "staging": 1}.get(tier, 0),
            "prevent_self_approval": tier == "production",
            "deployment_windows": {"production": PRODUCTION_WINDOWS, "staging": STAGING_WINDOWS}.get(tier, []),
            "replicas": {"production": 3, "staging": 2}.get(tier, 1),
            "description": f"{tier} environment seeded by the benchmark",
        }
        if tier == "preview":
            defaults.update(ttl_hours=72, expires_at=timezone.now() + timedelta(hours=72), template="preview")
        envs.append(Environment(cluster=cluster, **(defaults | spec)))
    return Environment.objects.bulk_create(envs)


def make_services(names, manifests, teams=("platform", "storefront", "payments", "data")):
    """One Service per name; manifests are cycled; every third service is blue-green."""
    from deployments.models import Service

    return Service.objects.bulk_create([
        Service(name=name, team=teams[i % len(teams)], description=f"{name} service", manifest=manifests[i % len(manifests)],
                strategy="blue-green" if i % 3 == 0 else "rolling")
        for i, name in enumerate(names)
    ])


def make_releases(services, per_service, created_by=None):
    """per_service releases of each service: 1.0.0, 1.1.0, ... with pinned, digest-bound images."""
    from deployments.models import Release

    releases = Release.objects.bulk_create([
        Release(service=svc, version=f"1.{k}.0", image=f"registry.example.com/{svc.name}:1.{k}.0@{fake_digest(svc.name, k)}",
                git_sha=hashlib.sha1(f"{svc.name}{k}".encode()).hexdigest(), notes=f"Release 1.{k}.0 of {svc.name}",
                created_by=created_by)
        for svc in services for k in range(per_service)
    ])
    for release, svc in zip(releases, (s for s in services for _ in range(per_service)), strict=False):
        release.service = svc  # render_text reads release.service.name without a query
    return releases


def bulk_audit(events):
    """Append audit events in bulk, chained after the current head with the real hash function.

    events: iterable of dicts with some of actor, actor_id, action, outcome, target_type,
    target_id, target_repr, environment, ip, changes, detail, and `at` (defaults to now).
    Returns the number written. Call `verify_audit_chain()` afterwards to prove the chain.
    """
    from portal.audit.chain import GENESIS, compute_hash
    from portal.audit.models import AuditEvent

    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = head if head else (0, GENESIS)
    batch, written = [], 0
    now = timezone.now()
    for event in events:
        seq += 1
        fields = {
            "seq": seq, "at": event.get("at") or now, "actor": event.get("actor", "system")[:150],
            "actor_id": event.get("actor_id"), "action": event["action"], "outcome": event.get("outcome", "success"),
            "target_type": event.get("target_type", ""), "target_id": str(event.get("target_id", "")),
            "target_repr": event.get("target_repr", "")[:255], "environment": event.get("environment", ""),
            "ip": event.get("ip", ""), "changes": event.get("changes", {}), "detail": event.get("detail", {}),
            "prev_hash": prev_hash,
        }
        fields["hash"] = prev_hash = compute_hash(fields)
        batch.append(AuditEvent(**fields))
        if len(batch) >= 5000:
            AuditEvent.objects.bulk_create(batch)
            written += len(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    return written + len(batch)


def verify_audit_chain():
    """Run `manage.py audit_verify` once; return its message, exit the benchmark when the chain is broken."""
    import io

    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
    except SystemExit:
        raise SystemExit(f"bench: the seeded audit chain is broken: {err.getvalue().strip()}") from None
    return out.getvalue().strip()


def analyze():
    """ANALYZE every table, as autovacuum does within a minute of a bulk load: without it the planner
    estimates a handful of rows for tables just filled with thousands and picks plans (nested loops
    over every pending row) that no running Gantry would use."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def table_sizes(*models):
    return {model._meta.verbose_name_plural: model.objects.count() for model in models}


# ------------------------------------------------------------------ measuring

def client_for(user):
    client = Client()
    client.force_login(user)
    return client


_LITERALS = [
    (re.compile(r"'(?:[^']|'')*'"), "?"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "?"),
    (re.compile(r"\((?:\s*\?\s*,)+\s*\?\s*\)"), "(?...)"),
]


def normalize_sql(sql):
    """The shape of a query, literals removed: the same query for another row looks the same."""
    for pattern, replacement in _LITERALS:
        sql = pattern.sub(replacement, sql)
    return sql


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = max(0, min(len(sorted_values) - 1, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


class Budget:
    """Share `seconds` among `rows` measurements: each row gets what is left over the rows left,
    so time a fast page does not use goes to the slow ones measured after it."""

    def __init__(self, seconds, rows):
        self.seconds, self.rows_left, self.started = seconds, rows, time.perf_counter()

    def next_row(self):
        left = self.seconds - (time.perf_counter() - self.started)
        share = max(0.0, left) / max(1, self.rows_left)
        self.rows_left -= 1
        return share

    @property
    def spent(self):
        return time.perf_counter() - self.started


class QueryLog:
    """Every SQL statement run inside the block (a `connection.execute_wrapper`).

    Like django.test.utils.CaptureQueriesContext, but exact past 9,000 queries: Django's debug
    log (which CaptureQueriesContext slices) is a deque of the last 9,000, so a page with an N+1
    over thousands of rows would be miscounted exactly when it matters.
    """

    def __init__(self, conn=None, with_origin=False):
        self.connection = conn or connection
        self.statements = []
        self.with_origin = with_origin
        self.origins = {}  # query shape -> the project's innermost frames that ran it (the 3rd time)
        self._seen = Counter()

    def _record(self, execute, sql, params, many, context):
        self.statements.append(sql)
        if self.with_origin:
            shape = normalize_sql(sql)
            self._seen[shape] += 1
            # The 3rd run says more than the 1st: "SELECT user WHERE id = ?" is also the session's user.
            if self._seen[shape] in (1, 3):
                self.origins[shape] = project_frames()
        return execute(sql, params, many, context)

    def __enter__(self):
        self._wrapper = self.connection.execute_wrapper(self._record)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc_info):
        self._wrapper.__exit__(*exc_info)

    def __len__(self):
        return len(self.statements)

    def repeats(self, at_least=3):
        """[(count, shape, origin)] of query shapes run at least `at_least` times, most first."""
        counts = Counter(normalize_sql(sql) for sql in self.statements)
        return [(n, shape, self.origins.get(shape, "")) for shape, n in counts.most_common() if n >= at_least]


def project_frames(limit=3):
    """Where in Gantry's code (not Django's, not the bench's) a query comes from: 'file:line fn' <- ..."""
    import traceback

    frames = [f for f in traceback.extract_stack()
              if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename and "/bench/" not in f.filename]
    return " <- ".join(f"{Path(f.filename).relative_to(ROOT)}:{f.lineno} {f.name}" for f in reversed(frames[-limit:]))


def measure(client, url, n=300, *, budget_s=None, min_n=10, warmup=1, headers=None):
    """GET `url` n times (after `warmup` untimed requests); stop early once `budget_s` seconds are
    spent and at least `min_n` requests are done.

    Returns {"url", "n", "status", "bytes", "p50", "p95", "max", "mean", "cpu_p50", "cpu_p95" (ms), "queries" (per request,
    the most seen), "queries_min", "queries_max", "repeats" (query shapes run 3+ times in one request)}.
    """
    headers = headers or {}
    for _ in range(warmup):
        client.get(url, **headers)
    timings, cpu, query_counts, status, size, repeats = [], [], [], None, 0, []
    started = time.perf_counter()
    for i in range(n):
        with QueryLog() as queries:
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.get(url, **headers)
            timings.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        query_counts.append(len(queries))
        if i == 0:
            status, size, repeats = response.status_code, len(response.content), queries.repeats()
        if budget_s is not None and i + 1 >= min_n and time.perf_counter() - started > budget_s:
            break
    if repeats:  # one more, untimed, to say where the repeated queries come from
        with QueryLog(with_origin=True) as queries:
            client.get(url, **headers)
        repeats = queries.repeats()
    ordered = sorted(timings)
    return {
        "url": url, "n": len(timings), "status": status, "bytes": size,
        "p50": statistics.median(ordered), "p95": percentile(ordered, 0.95), "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        # this process's CPU per request (Django and the driver, not PostgreSQL): steadier than wall time on a busy machine
        "cpu_p50": statistics.median(cpu), "cpu_p95": percentile(sorted(cpu), 0.95),
        "queries": Counter(query_counts).most_common(1)[0][0],
        "queries_min": min(query_counts), "queries_max": max(query_counts),
        "repeats": repeats,
    }


def count_queries(client, url, headers=None):
    """(status, number of queries, repeated query shapes) of one GET, after one warm-up request."""
    headers = headers or {}
    client.get(url, **headers)
    with QueryLog(with_origin=True) as queries:
        response = client.get(url, **headers)
    return response.status_code, len(queries), queries.repeats()


def url_exists(path):
    """True when a page or API route answers this path (used to prefer pages that may not exist yet)."""
    from django.urls import Resolver404, resolve

    try:
        resolve(path.split("?")[0])
        return True
    except Resolver404:
        return False


# ------------------------------------------------------------------ printing

def print_table(rows, columns, title=None):
    """rows: list of dicts; columns: [(key, heading)] or [(key, heading, format)]. Right-aligns numbers."""
    cells = []
    for row in rows:
        line = []
        for column in columns:
            key, fmt = column[0], (column[2] if len(column) > 2 else None)
            value = row.get(key, "")
            if fmt and isinstance(value, (int, float)):
                value = format(value, fmt)
            line.append("" if value is None else str(value))
        cells.append(line)
    headings = [column[1] for column in columns]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headings)]
    numeric = [all(_looks_numeric(line[i]) for line in cells) and bool(cells) for i in range(len(columns))]

    def fmt_line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=False)).rstrip()

    if title:
        print()
        print(title)
    print(fmt_line(headings))
    print("  ".join("-" * w for w in widths))
    for line in cells:
        print(fmt_line(line))
    sys.stdout.flush()


def _looks_numeric(text):
    try:
        float(text.replace(",", "").rstrip("%x"))
        return True
    except ValueError:
        return text in ("", "-")


LATENCY_COLUMNS = [
    ("who", "as"), ("url", "url"), ("status", "status"), ("n", "requests"), ("p50", "p50 ms", ".1f"),
    ("p95", "p95 ms", ".1f"), ("max", "max ms", ".1f"), ("queries", "queries/req"), ("kb", "KB", ".1f"),
]


def latency_row(who, result):
    return dict(result, who=who, kb=result["bytes"] / 1024)


def print_sizes(sizes, title="Data size"):
    print()
    print(title + ": " + ", ".join(f"{value:,} {name}" for name, value in sizes.items()))
    sys.stdout.flush()


def print_repeats(label, repeats, limit=3, width=160):
    """Print the query shapes that ran several times in one request (the N+1 suspects), and where from."""
    print(f"  {label}")
    for count, shape, origin in repeats[:limit]:
        shape = re.sub(r'SELECT .*? FROM', "SELECT ... FROM", shape, count=1) if len(shape) > width else shape
        print(f"    {count}x  {shape[:width]}")
        if origin:
            print(f"          from {origin}")


def print_suspects(suspects):
    """The pages whose queries grow with the data or repeat per row: [(who, url, repeats)], or that none does."""
    if not suspects:
        print("\nNo page repeats a query per row.")
        return
    print("\nQuery shapes run 3+ times in one request (full size):")
    for who, url, repeats in suspects:
        if repeats:
            print_repeats(f"{who} {url}", repeats)
        else:
            print(f"  {who} {url}: count differs but no single query repeats")


def machine():
    import platform

    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), " \
           f"PostgreSQL {_pg_version()}"


__all__ = [
    "ROOT", "setup", "reset", "step", "make_users", "make_cluster", "make_environments", "make_services",
    "make_releases", "bulk_audit", "verify_audit_chain", "analyze", "table_sizes", "client_for", "measure", "count_queries",
    "url_exists", "project_frames", "Budget", "print_table", "print_sizes", "print_repeats", "latency_row", "LATENCY_COLUMNS", "machine",
    "fake_digest", "normalize_sql", "QueryLog", "transaction", "timezone", "connection", "User",
]


def _pg_version():
    version = connection.cursor().connection.info.server_version
    return f"{version // 10000}.{version % 10000}"
