"""How fast a blue-green rollback moves traffic, and how fast an approval starts its deployment.

Runs everything in this process against a sandbox cluster over real HTTP and a fresh PostgreSQL
database (`gantry_bench_rollback` on 127.0.0.1:5432, dropped and created again each run, so no other
benchmark's database is touched; or DATABASE_URL),
with jobs run eagerly: the moment a change commits, its job runs here, as a worker that picks
it up at once would. Redis and the worker's fork are therefore not part of the figures.

    .venv/bin/python bench/bench_rollback.py [--rounds 50]

Figures (milliseconds, p50 / p95 / max over the rounds):
- rollback API -> Service flipped: from calling `request_rollback` to the moment the sandbox's
  Service selector shows the old colour (a thread polls the sandbox's store);
- rollback API -> job done: until `request_rollback` returns (the job has finished the deployment);
- approve -> job started / deployment running: from calling `approve_deployment` (the one
  approval an environment needs) to the job row's `started_at`, and to the deployment's
  `started_at` (`mark_running` done).
"""
import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fresh_database():
    """Point DATABASE_URL at a freshly created database of this benchmark's own (unless DATABASE_URL is set)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    import psycopg

    name = "gantry_bench_rollback"
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    parts = urlsplit(url)
    with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username, dbname="postgres",
                         autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    os.environ["DATABASE_URL"] = url
    return url


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings_test")
    os.environ["GANTRY_JOBS_EAGER"] = "1"
    os.environ.setdefault("GANTRY_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentiles(values):
    ordered = sorted(values)
    p95 = ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]
    return f"p50 {statistics.median(ordered):7.1f}   p95 {p95:7.1f}   max {ordered[-1]:7.1f}"


class SelectorWatch:
    """Polls the sandbox's Service until its selector colour becomes ``wanted``; records when."""

    def __init__(self, sandbox, namespace, wanted):
        self.sandbox, self.namespace, self.wanted = sandbox, namespace, wanted
        self.flipped_at = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            service = self.sandbox.get("services", "web", self.namespace)
            if service and service["spec"]["selector"].get("color") == self.wanted:
                self.flipped_at = time.perf_counter()
                return
            time.sleep(0.0005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        deadline = time.monotonic() + 5
        while self.flipped_at is None and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.001)
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--rollout-delay", type=float, default=0.05, help="sandbox seconds until a rollout is ready")
    args = parser.parse_args()

    database = fresh_database()
    setup_django()

    from django.contrib.auth import get_user_model

    from deployments.actions import approve_deployment, request_deployment, request_rollback
    from deployments.releases import register_release
    from deployments.models import Deployment
    from deployments.catalog import create_service
    from environments.models import Cluster, Environment
    from portal import kube
    from portal.accounts.models import RoleAssignment
    from portal.audit.models import AuditEvent
    from portal.demo_data import manifest
    from portal.jobs.models import Job
    from portal.sandbox import SandboxCluster

    sandbox = SandboxCluster(port=0, rollout_delay=args.rollout_delay).start()
    try:
        User = get_user_model()
        users = {}
        for name, role in (("ada", "admin"), ("dee", "deployer"), ("abe", "approver")):
            users[name] = User.objects.create_user(username=name, password="bench-pw-123")
            RoleAssignment.objects.create(user=users[name], role=role)
        admin, deployer, approver = users["ada"], users["dee"], users["abe"]
        cluster = Cluster.objects.create(name="sandbox", mode="server", server=sandbox.url, is_sandbox=True)
        environments = {}
        for slug, approvals in (("bench", 0), ("bench-gated", 1)):
            kube.ensure_namespace(cluster, slug, {})
            environments[slug] = Environment.objects.create(name=slug, slug=slug, tier="production", cluster=cluster,
                                                            namespace=slug, status="ready", replicas=2,
                                                            required_approvals=approvals)
        create_service(admin, {"name": "web", "strategy": "blue-green", "manifest": manifest(8000)})
        digest = "sha256:" + "c" * 64
        releases = [register_release(deployer, {"service": "web", "version": v,
                                                           "image": f"registry.example.com/web:{v}@{digest}"})
                    for v in ("1.0.0", "1.1.0")]

        def deploy(release, env="bench"):
            deployment = request_deployment(deployer, {"release": release.pk, "environment": env})
            deployment = Deployment.objects.get(pk=deployment.pk)
            assert deployment.state == "succeeded", (deployment.state, deployment.error)
            return deployment

        deploy(releases[0])
        live = deploy(releases[1])

        flips, totals = [], []
        for _ in range(args.rounds):
            with SelectorWatch(sandbox, "bench", live.previous_color) as watch:
                started = time.perf_counter()
                rollback = request_rollback(deployer, live.pk, reason="bench")
                done = time.perf_counter()
            rollback = Deployment.objects.get(pk=rollback.pk)
            assert rollback.state == "succeeded" and watch.flipped_at, (rollback.state, rollback.error)
            flips.append((watch.flipped_at - started) * 1000)
            totals.append((done - started) * 1000)
            live = deploy(releases[1])  # forward again, to the colour that still runs 1.1.0

        to_job, to_running = [], []
        for round_number in range(args.rounds):
            release = releases[round_number % 2]
            pending = request_deployment(deployer, {"release": release.pk, "environment": "bench-gated"})
            assert pending.state == "pending_approval", pending.state
            started = time.time()
            approve_deployment(approver, pending.pk)
            deployment = Deployment.objects.select_related("job").get(pk=pending.pk)
            assert deployment.state == "succeeded", (deployment.state, deployment.error)
            to_job.append((deployment.job.started_at.timestamp() - started) * 1000)
            to_running.append((deployment.started_at.timestamp() - started) * 1000)

        objects = sum(len(items) for kind, items in sandbox.state()["objects"].items() if kind != "pods")
        print(f"bench_rollback: {args.rounds} rounds; database {urlsplit(database).path.lstrip('/')}; sandbox "
              f"rollout delay {args.rollout_delay} s; 2 replicas per colour; jobs run in-process (eager)")
        print(f"data at the end: {Deployment.objects.count()} deployments, {Job.objects.count()} jobs, "
              f"{AuditEvent.objects.count()} audit events, {objects} objects in the sandbox")
        print(f"rollback API -> Service flipped     (ms)  {percentiles(flips)}")
        print(f"rollback API -> job done            (ms)  {percentiles(totals)}")
        print(f"approve -> job started_at           (ms)  {percentiles(to_job)}")
        print(f"approve -> deployment running       (ms)  {percentiles(to_running)}")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
