"""The audit log at a million events: keyset pages, filtered pages, export, verification.

    .venv/bin/python bench/bench_audit.py [--events 1000000] [--requests 60] [--reuse]

Uses its own database `gantry_bench_audit` on 127.0.0.1:5432 (dropped and created again each run
unless --reuse finds it already seeded with the same number of events), so no other benchmark's
data is touched. Seeding writes the events with PostgreSQL COPY, each with its hash computed by
`portal.audit.chain.compute_hash` exactly as `record` would, then `manage.py audit_verify`
checks the whole chain (its rate is one of the figures).

Figures:
- p50/p95 of the audit page and of GET /api/v1/audit: first page, a deep page (cursor in the
  middle), and pages filtered by actor, action, environment, outcome and a time range;
- export rows/s of GET /api/v1/audit/export?format=jsonl and csv (streamed in process, all
  rows consumed), with the process's peak RSS growth while streaming (flat memory), next to a
  plain `COPY (SELECT ...) TO STDOUT` of the same rows: the physical limit of this machine;
- audit_verify: events/s over the whole chain.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NAME = "gantry_bench_audit"
URL = f"postgres://postgres@127.0.0.1:5432/{NAME}"


def fresh_database(reuse):
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [NAME]).fetchone()
        if exists and reuse:
            return
        conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{NAME}"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per page")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database of this size")
    parser.add_argument("--only", default="pages,export,verify,period", help="sections to run (comma-separated)")
    parser.add_argument("--packs", type=int, default=200, help="production deployments in the period evidence ZIP")
    args = parser.parse_args()
    fresh_database(args.reuse)
    os.environ["BENCH_DATABASE_URL"] = URL
    import common  # noqa: F401  (sets Django up on BENCH_DATABASE_URL, migrates)

    from common import client_for, machine, measure, percentile, print_table, step  # noqa: F401
    from django.db import connection

    from portal.audit.models import AuditEvent

    have = AuditEvent.objects.count()
    if have < args.events:  # a reused database also holds the audit.export events of earlier runs
        if have:
            raise SystemExit(f"bench: {NAME} holds {have} events, not {args.events}; run without --reuse")
        with step(f"seeded {args.events:,} audit events with COPY"):
            seed(args.events)
        with step("ANALYZE"), connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
    print(f"\nbench_audit on {machine()}: {AuditEvent.objects.count():,} audit events "
          f"({table_size('audit_auditevent')})")
    sections = set(args.only.split(","))
    if "pages" in sections:
        pages(args.requests)
    if "export" in sections:
        export()
    if "verify" in sections:
        verify()
    if "period" in sections:
        period(args.packs)


# ------------------------------------------------------------------ seeding

ACTIONS = [("deployment.request", 8), ("deployment.approve", 6), ("deployment.queued", 6), ("deployment.running", 6),
           ("deployment.succeeded", 5), ("deployment.failed", 1), ("job.queued", 10), ("job.started", 10),
           ("job.succeeded", 9), ("auth.login", 12), ("auth.login_failed", 2), ("release.create", 5),
           ("environment.rules_update", 1), ("role.grant", 1), ("token.create", 1), ("audit.export", 1),
           ("health.changed", 16)]


def seed(count):
    """COPY `count` events spread over the last two years, hash-chained from the genesis."""
    import random
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from portal.audit.chain import GENESIS, compute_hash

    rng = random.Random(12)
    actions = [a for a, weight in ACTIONS for _ in range(weight)]
    users = [f"user{i:03d}" for i in range(200)]
    envs = [f"env-{i:02d}" for i in range(19)] + ["production"]
    start = timezone.now() - timedelta(days=730)
    step_us = int(730 * 86400 * 1_000_000 / count)
    columns = ("seq", "at", "actor", "actor_id", "action", "outcome", "target_type", "target_id", "target_repr",
               "environment", "ip", "changes", "detail", "prev_hash", "key_id", "hash")
    prev = GENESIS
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor, for COPY
        with raw.copy(f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN") as copy:
            for seq in range(1, count + 1):
                action = rng.choice(actions)
                system = action.startswith(("job.", "health.")) or action in ("deployment.queued", "deployment.running")
                actor = rng.choice(("gantry-worker", "gantry-scheduler")) if system else rng.choice(users)
                outcome = "denied" if rng.random() < 0.04 else ("failure" if rng.random() < 0.01 else "success")
                dep = rng.randrange(1, count // 20 + 2)
                env = rng.choice(envs)
                fields = {
                    "seq": seq, "at": start + timedelta(microseconds=seq * step_us), "actor": actor,
                    "actor_id": None if system else int(actor[4:]) + 1, "action": action, "outcome": outcome,
                    "target_type": "deployments.deployment", "target_id": str(dep),
                    "target_repr": f"#{dep} web 1.{dep % 50}.0 to {env}", "environment": env,
                    "ip": "" if system else f"10.0.{seq % 250}.{seq % 200}",
                    "changes": {"state": ["queued", "running"]} if system else {},
                    "detail": {"reason": "needs the approver role"} if outcome == "denied" else {},
                    "prev_hash": prev, "key_id": "",
                }
                fields["hash"] = prev = compute_hash(fields)
                copy.write_row([fields[c] if c not in ("changes", "detail") else json.dumps(fields[c]) for c in columns])
        cursor.execute("SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), %s)", [count])


def table_size(table):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [table])
        return cursor.fetchone()[0] + " with indexes"


# ------------------------------------------------------------------ pages

def pages(requests):
    from common import client_for, measure, print_table
    from django.contrib.auth import get_user_model

    from portal.accounts.models import RoleAssignment
    from portal.audit.models import AuditEvent

    auditor, _ = get_user_model().objects.get_or_create(username="bench-auditor")
    RoleAssignment.objects.get_or_create(user=auditor, role="viewer", environment=None)
    client = client_for(auditor)
    middle = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() // 2
    import base64

    cursor = base64.urlsafe_b64encode(str(middle).encode()).decode()
    cases = [
        ("first page", ""),
        ("deep page (middle)", None),
        ("actor", "actor=user042"),
        ("action", "action=role.grant"),
        ("action prefix", "action=auth."),
        ("environment", "environment=production"),
        ("outcome", "outcome=failure"),
        ("time range (1 day, a year ago)", "since=" + day_ago(365) + "&until=" + day_ago(364)),
        ("until 1.5 years ago", "until=" + day_ago(550)),
        ("environment + 5 months, 2 years ago", "environment=production&since=" + day_ago(700) + "&until=" + day_ago(550)),
        ("actor + outcome", "actor=user042&outcome=denied"),
        ("hide system events", "hide_system=1"),
        ("hide system events + action job.started", "hide_system=1&action=job.started"),
    ]
    rows = []
    for label, query in cases:
        page_q = f"before={middle}" if query is None else query
        api_q = f"cursor={cursor}" if query is None else query
        for kind, url in (("page", f"/audit/?{page_q}"), ("api", f"/api/v1/audit?{api_q}&limit=50")):
            result = measure(client, url, n=requests, budget_s=20)
            rows.append({"what": f"{kind}: {label}", "url": url[:60], **result})
    # CPU: this process's per request (view, template, driver; not PostgreSQL's), steadier than wall
    # time when other work shares the machine
    print_table(rows, [("what", "what"), ("status", "status"), ("n", "requests"), ("p50", "p50 ms", ".1f"),
                       ("p95", "p95 ms", ".1f"), ("max", "max ms", ".1f"), ("cpu_p50", "CPU p50 ms", ".1f"),
                       ("cpu_p95", "CPU p95 ms", ".1f"), ("queries", "queries")],
                title="Audit log pages (50 events each, keyset pagination)")


def day_ago(days):
    from datetime import timedelta

    from django.utils import timezone

    return (timezone.now() - timedelta(days=days)).date().isoformat()


# ------------------------------------------------------------------ export

def _rss():
    import psutil

    return psutil.Process().memory_info().rss


def export():
    from common import client_for, print_table
    from django.contrib.auth import get_user_model
    from django.db import connection

    client = client_for(get_user_model().objects.get(username="bench-auditor"))
    rows = []
    for fmt in ("jsonl", "csv"):
        import threading

        peak = [_rss()]
        stop = threading.Event()

        def watch(stop=stop, peak=peak):
            while not stop.wait(0.05):
                peak[0] = max(peak[0], _rss())

        watcher = threading.Thread(target=watch, daemon=True)
        before = _rss()
        watcher.start()
        started = time.perf_counter()
        response = client.get(f"/api/v1/audit/export?format={fmt}")
        size, lines = 0, 0
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        stop.set()
        watcher.join()
        events = lines - (1 if fmt == "csv" else 0)
        rows.append({"what": f"GET /api/v1/audit/export?format={fmt}", "rows": events, "s": seconds,
                     "rate": events / seconds, "mb": size / 1e6, "rss": (peak[0] - before) / 1e6})
    with connection.cursor() as cursor:
        raw = cursor.cursor
        started = time.perf_counter()
        size, lines = 0, 0
        with raw.copy("COPY (SELECT * FROM audit_auditevent ORDER BY seq) TO STDOUT") as copy:
            for block in copy:
                size += len(block)
                lines += bytes(block).count(b"\n")
        seconds = time.perf_counter() - started
    rows.append({"what": "COPY (SELECT * ... ORDER BY seq) TO STDOUT", "rows": lines, "s": seconds,
                 "rate": lines / seconds, "mb": size / 1e6, "rss": None})
    print_table(rows, [("what", "export"), ("rows", "rows"), ("s", "seconds", ".1f"), ("rate", "rows/s", ",.0f"),
                       ("mb", "MB", ".0f"), ("rss", "peak RSS growth MB", ".1f")],
                title="Export, streamed in process (all rows read), next to the physical limit")


def verify():
    import io

    from common import print_table
    from django.core.management import call_command

    import threading

    from portal.audit.models import AuditEvent

    count = AuditEvent.objects.count()
    out, err = io.StringIO(), io.StringIO()
    peak, stop = [_rss()], threading.Event()

    def watch():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _rss())

    watcher = threading.Thread(target=watch, daemon=True)
    before = _rss()
    watcher.start()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
        verdict = out.getvalue().strip()
    except SystemExit:
        verdict = "BROKEN: " + err.getvalue().strip()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop.set()
    watcher.join()
    print_table([{"what": "manage.py audit_verify (whole chain)", "events": count, "s": seconds,
                  "rate": count / seconds, "cpu": cpu, "rss": (peak[0] - before) / 1e6, "verdict": verdict[:60]}],
                [("what", "check"), ("events", "events"), ("s", "seconds", ".1f"), ("rate", "events/s", ",.0f"),
                 ("cpu", "its CPU s", ".1f"),
                 ("rss", "peak RSS growth MB", ".1f"), ("verdict", "verdict")], title="Verification")


def period(packs):
    """The quarterly review: a ZIP of `packs` production deployments' evidence packs, each built from its
    share of the million events (found through the target index), as the background job builds it."""
    from datetime import timedelta

    from common import make_cluster, make_environments, make_releases, make_services, print_table
    from django.utils import timezone

    from deployments.compliance.period import build_period_zip, zip_path
    from deployments.models import Deployment
    from portal.audit.models import AuditEvent
    from portal.jobs.models import Job

    # the seeded events target deployments #1..#N "to production" among other environments: make the rows
    ids = list(AuditEvent.objects.filter(target_type="deployments.deployment", environment="production")
               .values_list("target_id", flat=True).distinct().order_by("target_id")[:packs])
    Deployment.objects.filter(pk__in=[int(i) for i in ids]).delete()
    cluster = make_cluster(name=f"bench-{timezone.now():%H%M%S%f}")
    env = make_environments([{"slug": f"production-{cluster.pk}", "tier": "production"}], cluster)[0]
    service = make_services([f"web-{cluster.pk}"], ["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"])[0]
    release = make_releases([service], 1)[0]
    start = timezone.now() - timedelta(days=80)
    rows = [Deployment(pk=int(i), release=release, environment=env, service=service, state="succeeded", image=release.image,
                       manifest_hash="0" * 64, rendered_manifest="kind: ConfigMap\n") for i in ids]
    Deployment.objects.bulk_create(rows)
    for n, i in enumerate(ids):  # requested_at is auto_now_add: spread them over the quarter afterwards
        Deployment.objects.filter(pk=int(i)).update(requested_at=start + timedelta(hours=n))
    events = AuditEvent.objects.filter(target_type="deployments.deployment", target_id__in=ids).count()
    job = Job.objects.create(kind="compliance.period_evidence", params={
        "since": (start - timedelta(days=1)).isoformat(), "until": timezone.now().isoformat()})
    started = time.perf_counter()
    summary = build_period_zip(job, lambda line: None)
    seconds = time.perf_counter() - started
    zip_path(job.pk).unlink()
    print_table([{"what": "period evidence ZIP (build_period_zip)", "packs": summary["packs"], "events": events,
                  "s": seconds, "rate": summary["packs"] / seconds, "mb": summary["bytes"] / 1e6}],
                [("what", "job"), ("packs", "packs"), ("events", "their events"), ("s", "seconds", ".1f"),
                 ("rate", "packs/s", ".1f"), ("mb", "ZIP MB", ".1f")], title="Evidence for a period")


if __name__ == "__main__":
    main()
