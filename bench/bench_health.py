"""Live health at size: one probe cycle over 2,000 endpoints, the board at 100 x 50, and a short HTTP load.

1. Probe cycle: 40 environments x 50 services = 2,000 live services spread over 4 sandbox clusters
   (separate processes, real HTTP); 5 % of them answer their health path slowly (1.5 s), 2 % never
   in time (dead: the probe's timeout ends it). ``probe_all`` enqueues one job per shard on the
   ``health`` queue and W real ``rqworker`` processes run them; the time from enqueue to the last
   job done is printed with the worker count (the issue's budget: inside a 15 s interval).
2. The board at 100 environments x 50 services (5,000 cells): p50/p95, CPU and queries per request,
   with the queries of a 5 x 5 board beside; the page as kept by the process, after a change
   somewhere (its kept boards forgotten) and cold (kept cells forgotten too); its update polls (304,
   and 10 cells changed); the health API.
3. (``--load`` seconds per phase) locust against gunicorn (DEBUG off): /healthz, the board's poll,
   the board page, the health API (one environment, all cells) and a deployment as CI polls it, each
   alone, then a mix; requests per second of each beside /healthz's, on the same server in the same run.

    .venv/bin/python bench/bench_health.py [--workers 4] [--parallelism 32] [--timeout 3] [--shard-size 10] [--load 15]
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets Django up)
from common import step  # noqa: E402

from portal.throwaway import free_port, port_open  # noqa: E402

ROOT = common.ROOT
SANDBOXES = 4
CYCLE_ENVS, SERVICES = 40, 50
BOARD_ENVS = 100
SLOW_MS, DEAD_MS = 1500, 60000


class Sandbox:
    """A sandbox cluster in its own process, fed over one keep-alive connection."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "portal.sandbox", "--port", str(self.port), "--rollout-delay", "0"],
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not port_open(self.port):
            if time.monotonic() > deadline:
                raise SystemExit("bench: a sandbox cluster did not start")
            time.sleep(0.05)
        self.connection = None

    def _connect(self):
        import socket

        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stall

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def post(self, path, body):
        for attempt in range(2):  # the sandbox drops idle keep-alive connections after a minute
            try:
                if self.connection is None:
                    self._connect()
                self.connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                response = self.connection.getresponse()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.connection = None
                if attempt:
                    raise
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"bench: sandbox {path} answered {response.status}: {data[:200]!r}")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def seed(n_envs, sandboxes):
    """n_envs environments x SERVICES live rolling deployments; cells pre-created when no sandbox is given."""
    import yaml

    from deployments.models import Deployment
    from deployments.rendering import render_text
    from environments.models import Cluster
    from portal.demo_data import manifest

    common.reset()
    clusters = [Cluster.objects.create(name=f"sandbox-{i}", mode="server", server=s.url if s else "http://127.0.0.1:1",
                                       is_sandbox=True) for i, s in enumerate(sandboxes or [None])]
    tiers = ["development", "staging", "production", "preview"]
    specs = [{"slug": f"env-{k:03d}", "tier": tiers[k % 4]} for k in range(n_envs)]
    envs = []
    for index, cluster in enumerate(clusters):
        envs += common.make_environments([s for k, s in enumerate(specs) if k % len(clusters) == index], cluster)
    services = common.make_services([f"svc-{k:02d}" for k in range(SERVICES)], [manifest(8000)])
    for service in services:
        service.strategy = "rolling"
        service.save(update_fields=["strategy"])
    releases = common.make_releases(services, 1)
    admin = common.make_users([("admin", ["admin"])])["admin"]
    now = common.timezone.now()
    rows, texts = [], {}
    for env in envs:
        env.cluster = next(c for c in clusters if c.pk == env.cluster_id)
        for release in releases:
            text = render_text(release.service, release, env)
            texts[(env.pk, release.service_id)] = text
            rows.append(Deployment(release=release, environment=env, service=release.service, state="succeeded",
                                   requested_by=admin, image=release.image, manifest_hash="0" * 64, rendered_manifest=text,
                                   started_at=now, finished_at=now))
    Deployment.objects.bulk_create(rows, batch_size=1000)
    if sandboxes:
        for env in envs:
            sandbox = sandboxes[clusters.index(env.cluster)]
            sandbox.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.namespace}})
            for release in releases:
                for doc in yaml.safe_load_all(texts[(env.pk, release.service_id)]):
                    doc["metadata"]["namespace"] = env.namespace
                    plural = "apis/apps/v1" if doc["kind"] == "Deployment" else "api/v1"
                    kind = "deployments" if doc["kind"] == "Deployment" else "services"
                    sandbox.post(f"/{plural}/namespaces/{env.namespace}/{kind}", doc)
    return admin, envs, services, clusters


# ------------------------------------------------------------------ 1. one probe cycle

def start_workers(count):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return [subprocess.Popen([sys.executable, "manage.py", "rqworker", "health"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(count)]


def run_cycle(queue, connection):
    """probe_all, then wait for every shard job: (shard jobs, seconds from enqueue to the last job done)."""
    from deployments.monitoring import probing

    from rq.job import Job

    queue.finished_job_registry.cleanup()
    for job_id in queue.finished_job_registry.get_job_ids():
        queue.finished_job_registry.remove(job_id, delete_job=True)
    started = time.perf_counter()
    shards = probing.probe_all()
    registry = queue.started_job_registry
    while (queue.count or registry.count) and time.perf_counter() - started < 300:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    jobs = [j for j in Job.fetch_many(queue.finished_job_registry.get_job_ids(), connection=connection) if j]
    if os.environ.get("BENCH_VERBOSE"):
        for job in sorted(jobs, key=lambda j: j.started_at):
            print(f"bench:   shard job waited {(job.started_at - job.enqueued_at).total_seconds():.1f} s, "
                  f"ran {(job.ended_at - job.started_at).total_seconds():.1f} s", file=sys.stderr)
    return shards, elapsed


def probe_cycle(workers, parallelism, timeout, shard_size, cycles):
    import django_rq
    from django.conf import settings
    from rq import Worker

    from deployments.monitoring.models import CellHealth, HealthChange

    # The workers are other processes: they read these from their environment (portal/settings.py).
    os.environ["GANTRY_PROBE_PARALLELISM"] = str(parallelism)
    os.environ["GANTRY_PROBE_TIMEOUT_SECONDS"] = str(timeout)
    os.environ["GANTRY_PROBE_SHARD_SIZE"] = str(shard_size)
    settings.GANTRY_PROBE_SHARD_SIZE = shard_size
    settings.GANTRY_PROBE_TIMEOUT_SECONDS = timeout
    sandboxes = [Sandbox() for _ in range(SANDBOXES)]
    procs = []
    rows = []
    try:
        with step(f"seeded {CYCLE_ENVS} environments x {SERVICES} services on {SANDBOXES} sandbox clusters"):
            _admin, envs, services, clusters = seed(CYCLE_ENVS, sandboxes)
        total = len(envs) * len(services)
        slow = [(e, s) for k, (e, s) in enumerate((e, s) for e in envs for s in services) if k % 20 == 7]  # 5 %
        dead = [(e, s) for k, (e, s) in enumerate((e, s) for e in envs for s in services) if k % 50 == 11]  # 2 %
        for latency, cells in ((SLOW_MS, slow), (DEAD_MS, dead)):
            for env, service in cells:
                sandboxes[[c.pk for c in clusters].index(env.cluster_id)].post(
                    "/sandbox/traffic", {"deployment": f"{env.namespace}/{service.name}", "latency_ms": latency})
        queue = django_rq.get_queue("health")
        queue.empty()
        procs = start_workers(workers)
        connection = django_rq.get_connection("health")
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=connection)) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        for cycle in range(1, cycles + 1):
            changes_before = HealthChange.objects.count()
            shards, elapsed = run_cycle(queue, connection)
            statuses = {}
            for status in CellHealth.objects.values_list("status", flat=True):
                statuses[status] = statuses.get(status, 0) + 1
            rows.append({"cycle": "first (every cell new)" if cycle == 1 else f"{cycle} (steady)", "workers": workers,
                         "parallelism": parallelism, "timeout": timeout, "shards": shards, "cells": sum(statuses.values()),
                         "changes": HealthChange.objects.count() - changes_before, "seconds": elapsed,
                         "failed_jobs": queue.failed_job_registry.count,
                         "statuses": ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))})
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for sandbox in sandboxes:
            sandbox.stop()
    print()
    print(f"Probe cycles over {total} endpoints ({len(slow)} slow at {SLOW_MS} ms, {len(dead)} dead: no answer in time), "
          f"{shard_size} environments per shard job")
    common.print_table(rows, [("cycle", "cycle"), ("workers", "workers"), ("parallelism", "threads/job"), ("timeout", "timeout s"),
                              ("shards", "shard jobs"), ("cells", "cells"), ("changes", "status changes"), ("seconds", "cycle s", ".1f"),
                              ("failed_jobs", "failed jobs"), ("statuses", "statuses")])


# ------------------------------------------------------------------ 2. the board

def seed_board(n_envs, n_services):
    """n_envs x n_services cells (bulk), a realistic mix: mostly healthy, some degraded/down/unknown, each
    cell with its own `since`, a third with a live colour, one open deployment per environment."""
    from datetime import timedelta

    from deployments.models import Deployment
    from deployments.monitoring.models import CellHealth

    global SERVICES
    SERVICES, saved = n_services, SERVICES
    try:
        admin, envs, services, _ = seed(n_envs, None)
    finally:
        SERVICES = saved
    now = common.timezone.now()
    live = {(d.environment_id, d.service_id): d for d in Deployment.objects.select_related("release")}
    statuses = ["healthy"] * 17 + ["degraded", "down", "unknown"]
    CellHealth.objects.bulk_create([
        CellHealth(environment=env, service=svc, deployment_id=live[(env.pk, svc.pk)].pk, status=statuses[(env.pk * 7 + svc.pk) % 20],
                   reason="" if (env.pk * 7 + svc.pk) % 20 < 17 else "/health answered HTTP 503 3 times in a row",
                   since=now - timedelta(seconds=(env.pk * n_services + svc.pk) * 37), checked_at=now,
                   changed_at=now - timedelta(seconds=(env.pk * n_services + svc.pk) * 37),
                   latency_ms=12, ready_replicas=1, desired_replicas=1, color=("blue", "green", "")[svc.pk % 3])
        for env in envs for svc in services], batch_size=2000)
    Deployment.objects.bulk_create([  # one deployment waiting in every environment: the cells' "pending" marks
        Deployment(release=live[(env.pk, services[0].pk)].release, environment=env, service=services[0], state="queued",
                   requested_by=admin, image="x", manifest_hash="0" * 64, rendered_manifest="") for env in envs])
    Deployment.objects.update(updated_at=now - timedelta(days=3))  # seeded a while ago: a poll's margin finds none
    return admin, envs, services


class Forgetful:
    """A test client that empties the board's kept boards (and cells) before each request."""

    def __init__(self, client, what):
        self.client, self.what = client, what

    def get(self, *args, **kwargs):
        from deployments.monitoring import board_html, views

        if "boards" in self.what:
            views._BOARDS.clear()
        if "cells" in self.what:
            board_html._WRITTEN.clear()
        return self.client.get(*args, **kwargs)


def board(requests):
    """The dashboard (the board) and its update poll at 100 x 50, with queries at a small size beside."""
    import re

    from deployments.monitoring.models import CellHealth

    sizes = [(5, 5), (BOARD_ENVS, SERVICES)]
    queries_small = {}
    for n_envs, n_services in sizes:
        with step(f"seeded the board: {n_envs} environments x {n_services} services"):
            admin, envs, services = seed_board(n_envs, n_services)
        client = common.client_for(admin)
        body = client.get("/").content.decode()
        url = re.search(r'id="board-updates"[^>]*hx-get="([^"]*)"', body).group(1).replace("&amp;", "&")
        version = re.search(r'id="board-updates"[^>]*data-live-version="([^"]*)"', body).group(1)
        poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "board-updates", "HTTP_IF_NONE_MATCH": f'"{version}"'}
        targets = [("dashboard (the board)", "/", {}), ("board, only problems", "/?problems=1", {}),
                   ("update poll, nothing changed (304)", url, poll)]
        changed = [("update poll, 10 cells changed", url, {k: v for k, v in poll.items() if k != "HTTP_IF_NONE_MATCH"}),
                   ("health API, every cell", "/api/v1/health", {})]
        forgetful = [("dashboard, board changed since last render", ("boards",)), ("dashboard, nothing kept (first render)", ("boards", "cells"))]
        if (n_envs, n_services) == sizes[0]:
            for label, target, headers in targets + changed:
                queries_small[label] = common.count_queries(client, target, headers)[1]
            for label, forget in forgetful:
                queries_small[label] = common.count_queries(Forgetful(client, forget), "/")[1]
            continue
        rows = []
        for label, target, headers in targets:
            result = common.measure(client, target, requests, budget_s=20, headers=headers)
            rows.append(dict(common.latency_row(label, result), small=queries_small[label]))
        # the page keeps the boards it wrote lately (by their version) and each cell's last HTML: measured
        # without them too, as after a change somewhere on the board, and as a process's first page
        for label, forget in forgetful:
            result = common.measure(Forgetful(client, forget), "/", requests, budget_s=20)
            rows.append(dict(common.latency_row(label, result), small=queries_small[label]))
        # ten cells redrawn by a probe after the page's last poll: the next poll sends those ten only
        since = common.timezone.now()
        keys = list(CellHealth.objects.order_by("pk").values_list("pk", flat=True)[:10])
        CellHealth.objects.filter(pk__in=keys).update(status="down", reason="bench", changed_at=since)
        for label, target, headers in changed:
            result = common.measure(client, target, requests, budget_s=20, headers=headers)
            rows.append(dict(common.latency_row(label, result), small=queries_small[label]))
        common.print_table(rows, [("who", "what"), ("n", "n"), ("status", "status"), ("p50", "p50 ms", ".1f"), ("p95", "p95 ms", ".1f"),
                                  ("cpu_p50", "cpu p50 ms", ".1f"), ("small", "queries @5x5"), ("queries", f"queries @{n_envs}x{n_services}"),
                                  ("kb", "KB", ".0f")],
                           title=f"The board at {n_envs} environments x {n_services} services ({n_envs * n_services} cells)")
    return admin


# ------------------------------------------------------------------ 3. load

LOCUSTFILE = '''
import os

from locust import HttpUser, between, tag, task

TOKEN = {token!r}
SESSION = {session!r}
DEPLOYMENT = {deployment}
POLL_URL = {poll_url!r}
POLL_HEADERS = {{"HX-Request": "true", "HX-Target": "board-updates", "X-Gantry-Live": "1", "If-None-Match": {etag!r}}}


class Gantry(HttpUser):
    wait_time = between(0, 0)

    def on_start(self):
        self.api = {{"Authorization": "Bearer " + TOKEN}}
        self.client.cookies.set("sessionid", SESSION)

    @tag("healthz")
    @task(1)
    def healthz(self):
        self.client.get("/healthz", name="/healthz")

    @tag("poll", "mix")
    @task(1)
    def poll(self):  # an open board, every second: 304 while nothing changed
        with self.client.get(POLL_URL, headers=POLL_HEADERS, name="board poll (304)", catch_response=True) as response:
            if response.status_code == 304:
                response.success()
            else:  # a 200 here would be a render (or a signed-out reload), not what an idle open board costs
                response.failure(f"answered {{response.status_code}}, not 304")

    @tag("health", "mix")
    @task(1)
    def health(self):
        self.client.get("/api/v1/health?environment=env-001", headers=self.api, name="health API (1 environment)")

    @tag("deployment", "mix")
    @task(1)
    def deployment(self):
        self.client.get(f"/api/v1/deployments/{{DEPLOYMENT}}", headers=self.api, name="deployment API (CI poll)")

    @tag("board")
    @task(1)
    def board(self):
        self.client.get("/", name="board page (5,000 cells)")

    @tag("health_all")
    @task(1)
    def health_all(self):
        self.client.get("/api/v1/health", headers=self.api, name="health API (all 5,000 cells)")
'''

# (tag, what it is): each phase runs alone against the same server, one after the other, so every figure
# is that endpoint's own requests per second; "mix" runs the board's poll and the two APIs together (the
# issue's "mix of pages", whose requests per second together are compared with /healthz alone).
PHASES = [("healthz", "/healthz"), ("poll", "board poll, nothing changed (304)"), ("board", "board page, 5,000 cells (2.4 MB)"),
          ("health", "health API, 1 environment (50 cells)"), ("health_all", "health API, all 5,000 cells"),
          ("deployment", "deployment API as CI polls it"), ("mix", "the mix of pages: board poll + health API (1 env) + deployment API")]


def _locust(folder, port, seconds, users, phase):
    import csv

    prefix = folder / phase
    result = subprocess.run([sys.executable, "-m", "locust", "-f", str(folder / "locustfile.py"), "--headless", "-u", str(users),
                    "-r", str(users), "-t", f"{seconds}s", "--only-summary", "--tags", phase, "--csv", str(prefix),
                    "-H", f"http://127.0.0.1:{port}"], cwd=folder, capture_output=True, text=True, check=False)
    (folder / f"{phase}.log").write_text(result.stdout + result.stderr)
    with open(f"{prefix}_stats.csv") as handle:
        return [row for row in csv.DictReader(handle) if row["Name"]]


def _wait_until_serving(port, paths, headers, timeout=120):
    """Until every worker answers (the port opens before the workers have loaded Django): each path a few times."""
    deadline = time.monotonic() + timeout
    for path in paths:
        answered, status = 0, None
        while answered < 6:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: gunicorn did not answer {path} with 200 within {timeout} s (last: {status})")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", path, headers=headers)
                status = connection.getresponse().status
                answered += status == 200
                connection.close()
            except OSError as exc:
                status = exc
                time.sleep(0.2)


def load(seconds, admin, users=10, workers=2):
    """locust against gunicorn (DEBUG off, as in production), one phase per endpoint, then the mix."""
    import re

    from django.conf import settings

    from deployments.models import Deployment
    from portal.accounts.services import create_api_token

    admin.backend = "django.contrib.auth.backends.ModelBackend"
    token = create_api_token(admin, "bench", operator="bench")
    client = common.client_for(admin)
    body = client.get("/").content.decode()
    poll_url = re.search(r'id="board-updates"[^>]*hx-get="([^"]*)"', body).group(1).replace("&amp;", "&")
    etag = '"' + re.search(r'id="board-updates"[^>]*data-live-version="([^"]*)"', body).group(1) + '"'
    deployment = Deployment.objects.order_by("pk").values_list("pk", flat=True).first()
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="gantry-bench-"))
    (folder / "locustfile.py").write_text(LOCUSTFILE.format(token=token, session=client.cookies["sessionid"].value,
                                                            deployment=deployment, poll_url=poll_url, etag=etag))
    env = dict(os.environ, GANTRY_LOG_LEVEL="ERROR", DEBUG="0", SECRET_KEY=settings.SECRET_KEY, GANTRY_SSL_REDIRECT="0",
               GANTRY_SECURE_COOKIES="0", ALLOWED_HOSTS="127.0.0.1,localhost")
    # DEBUG off serves static files from the collected manifest, as the image does (Dockerfile)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "portal.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rows = []
    try:
        _wait_until_serving(port, ["/healthz", "/"], {"Cookie": f"sessionid={client.cookies['sessionid'].value}"})
        for phase, label in PHASES:
            for row in _locust(folder, port, seconds, users, phase):
                name = row["Name"]
                if name == "Aggregated" and phase != "mix":
                    continue
                rows.append({"phase": label if phase != "mix" else f"mix: {'all together' if name == 'Aggregated' else name}",
                             "n": int(row["Request Count"]),
                             "failures": int(row["Failure Count"]), "rps": float(row["Requests/s"]),
                             "p50": float(row["50%"]), "p95": float(row["95%"])})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    healthz = next(r["rps"] for r in rows if r["phase"] == "/healthz")
    for row in rows:
        row["ratio"] = f"{row['rps'] / healthz:.2f}" if healthz else "-"
    print()
    common.print_table(rows, [("phase", "what (each alone, then the mix)"), ("n", "requests"), ("failures", "failures"),
                              ("rps", "req/s", ".1f"), ("ratio", "vs /healthz"), ("p50", "p50 ms", ".0f"), ("p95", "p95 ms", ".0f")],
                       title=f"locust, {users} users, {seconds} s a phase, gunicorn {workers} sync workers, DEBUG off, board at 100 x 50")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4, help="rqworker processes on the health queue")
    parser.add_argument("--parallelism", type=int, default=32, help="probe threads per shard job")
    parser.add_argument("--timeout", type=float, default=3, help="per-probe timeout (s)")
    parser.add_argument("--shard-size", type=int, default=10, help="environments per shard job")
    parser.add_argument("--cycles", type=int, default=3, help="probe cycles in a row (the first creates every cell)")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--load", type=int, default=15, help="seconds of locust load per phase (0: skip)")
    parser.add_argument("--users", type=int, default=10, help="locust users")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--load-only", action="store_true", help="seed the board without measuring it, then --load")
    parser.add_argument("--skip-cycle", action="store_true")
    parser.add_argument("--skip-board", action="store_true", help="only the probe cycle")
    args = parser.parse_args()
    print(common.machine())
    if not args.skip_cycle:
        probe_cycle(args.workers, args.parallelism, args.timeout, args.shard_size, args.cycles)
    if args.skip_board:
        return
    admin = board(args.requests) if not args.load_only else seed_board(BOARD_ENVS, SERVICES)[0]
    if args.load:
        load(args.load, admin, args.users, args.web_workers)


if __name__ == "__main__":
    main()
