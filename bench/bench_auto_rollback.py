"""Automatic rollback, end to end: a bad release detected -> traffic back on the previous release.

Real processes, as in production: a sandbox cluster (its own process, real HTTP), `manage.py
scheduler` (the periodic probe and verification steps) and one `manage.py rqworker` on the deploy,
health and default queues, over a fresh PostgreSQL database (`gantry_bench_autorollback`, dropped
and created each run) and Redis (`BENCH_REDIS_URL`, default db 15, emptied).

For each strategy (blue-green, rolling): web 1.0.0 is deployed to staging and passes a short
verification window; then the window is the seeded 300 s, 1.1.0 is deployed, and as soon as it is
live its health path starts failing (the sandbox's `fail_probe` fault on the Deployment serving it).
With the environment's seeded settings (a verification step every 15 s, down at 3 failures in a
row, automatic rollback on) Gantry detects it and rolls back by itself. Printed, in seconds:

- fault -> detected: until the verification is `failed` (its `finished_at`): three probes;
- detected -> traffic back: from that moment until the cluster serves 1.0.0 again: the live Service
  selects the old colour (blue-green), or the Deployment runs the 1.0.0 image with every replica
  ready (rolling). The issue's target for this figure: under 60 s;
- detected -> rollback job started, and the whole fault -> traffic back.

    .venv/bin/python bench/bench_auto_rollback.py [--strategies blue-green rolling] [--interval 15]
"""
import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from portal.throwaway import free_port, port_open  # noqa: E402  (the repository on the path first)
DATABASE = "gantry_bench_autorollback"


def fresh_database():
    import psycopg

    url = os.environ.get("BENCH_DATABASE_URL") or f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username, dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return url


class Processes:
    """The sandbox, the scheduler and the worker; stopped (by their own process group) at the end."""

    def __init__(self):
        self.procs = []

    def start(self, args, env):
        path = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"gantry-bench-autorollback-{len(self.procs)}.log"
        with open(path, "w") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def sandbox_call(url, method, path, body=None):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - the bench's own local sandbox
        return json.load(answer)


def wait_for(what, probe, timeout=240, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    raise SystemExit(f"bench: gave up waiting for {what}")


def run(strategy, sandbox_url, interval):
    from django.contrib.auth import get_user_model

    from deployments.actions import request_deployment
    from deployments.catalog import create_service
    from deployments.models import Deployment
    from deployments.monitoring.config import update_verification
    from deployments.monitoring.models import AutoRollback, Verification
    from deployments.releases import register_release
    from environments.models import Cluster, Environment
    from portal import kube
    from portal.accounts.models import RoleAssignment
    from portal.demo_data import manifest

    users = get_user_model().objects
    admin = users.filter(username="ada").first()
    if admin is None:
        admin, deployer = users.create_user("ada", password="bench-pw-123"), users.create_user("dee", password="bench-pw-123")
        RoleAssignment.objects.create(user=admin, role="admin")
        RoleAssignment.objects.create(user=deployer, role="deployer")
    deployer = users.get(username="dee")
    cluster, _ = Cluster.objects.get_or_create(name="sandbox", defaults={"mode": "server", "server": sandbox_url, "is_sandbox": True})
    slug = f"staging-{strategy.replace('-', '')}"
    kube.ensure_namespace(cluster, slug, {})
    env = Environment.objects.create(name=slug, slug=slug, tier="staging", cluster=cluster, namespace=slug, status="ready",
                                     replicas=2, required_approvals=0)
    name = f"web{strategy.replace('-', '')}"
    create_service(admin, {"name": name, "strategy": strategy, "manifest": manifest(8000), "health_path": "/health"})
    digest = "sha256:" + "c" * 64
    old, new = (register_release(deployer, {"service": name, "version": v, "image": f"registry.example.com/web:{v}@{digest}"})
                for v in ("1.0.0", "1.1.0"))

    def deploy(release):
        pending = request_deployment(deployer, {"release": release.pk, "environment": slug})
        return wait_for(f"{name} {release.version} to be deployed",
                        lambda: Deployment.objects.filter(pk=pending.pk, state="succeeded").first())

    # The seeded settings, but a 10 s window for the first release so that it has passed verification
    # (automatic rollback only goes back to a release that passed there).
    update_verification(admin, env, {"window_seconds": 10, "probe_interval_seconds": interval, "failure_threshold": 3,
                                     "auto_rollback": True, "prometheus_url": None})
    first = deploy(old)
    wait_for("1.0.0 to pass verification", lambda: Verification.objects.filter(deployment=first, state="passed").exists(), timeout=120)
    update_verification(admin, env, {"window_seconds": 300})
    bad = deploy(new)
    serving = f"{name}-{bad.color}" if bad.color else name
    fault_at = time.time()
    sandbox_call(sandbox_url, "POST", "/sandbox/faults", {"deployment": serving, "fault": "fail_probe"})

    def traffic_back():
        if strategy == "blue-green":
            service = sandbox_call(sandbox_url, "GET", f"/api/v1/namespaces/{slug}/services/{name}")
            return (service["spec"].get("selector") or {}).get("color") == first.color and time.time()
        workload = sandbox_call(sandbox_url, "GET", f"/apis/apps/v1/namespaces/{slug}/deployments/{name}")
        image = workload["spec"]["template"]["spec"]["containers"][0]["image"]
        status = workload.get("status") or {}
        ready = status.get("readyReplicas", 0) == status.get("updatedReplicas", -1) == workload["spec"].get("replicas", 1)
        return image == old.image and ready and time.time()

    back_at = wait_for("traffic back on 1.0.0", traffic_back, timeout=300)
    verification = Verification.objects.get(deployment=bad)
    automatic = AutoRollback.objects.get(deployment=bad)
    rollback = Deployment.objects.select_related("job").get(pk=automatic.rollback_id)
    detected = verification.finished_at.timestamp()
    return {"strategy": strategy, "verification": verification.state, "reason": verification.reason[:70],
            "fault_to_detected": detected - fault_at, "detected_to_job": rollback.job.started_at.timestamp() - detected,
            "detected_to_back": back_at - detected, "fault_to_back": back_at - fault_at}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["blue-green", "rolling"], choices=["blue-green", "rolling"])
    parser.add_argument("--interval", type=int, default=15, help="verification probe interval (s); the seeded default is 15")
    parser.add_argument("--rollout-delay", type=float, default=2.0, help="sandbox seconds until a rollout is ready")
    args = parser.parse_args()

    database = fresh_database()
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    env = dict(os.environ, DATABASE_URL=database, REDIS_URL=redis_url, DEBUG="1", DJANGO_SETTINGS_MODULE="portal.settings",
               GANTRY_LOG_LEVEL=os.environ.get("GANTRY_LOG_LEVEL", "WARNING"), PYTHONUNBUFFERED="1")
    env.pop("GANTRY_JOBS_EAGER", None)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DEBUG", "DJANGO_SETTINGS_MODULE", "GANTRY_LOG_LEVEL")})
    os.environ.pop("GANTRY_JOBS_EAGER", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import django_rq

    django_rq.get_connection("default").flushdb()

    processes = Processes()
    port = free_port()
    sandbox_url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        processes.start([sys.executable, "-m", "portal.sandbox", "--port", str(port), "--rollout-delay", str(args.rollout_delay)], env)
        processes.start([sys.executable, "manage.py", "rqworker", "deploy", "health", "default"], env)
        processes.start([sys.executable, "manage.py", "scheduler"], env)
        wait_for("the sandbox", lambda: port_open(port), timeout=30)
        for strategy in args.strategies:
            rows.append(run(strategy, sandbox_url, args.interval))
    finally:
        processes.stop()
    load = os.getloadavg()
    print(f"bench_auto_rollback: {os.cpu_count()} CPU(s), load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; 1 worker + scheduler; "
          f"verification step every {args.interval} s, down at 3 failed probes; sandbox rollout delay {args.rollout_delay} s")
    print(f"{'strategy':<11} {'fault->detected s':>17} {'detected->job s':>15} {'detected->traffic back s':>24} "
          f"{'fault->traffic back s':>21}  verification")
    for row in rows:
        print(f"{row['strategy']:<11} {row['fault_to_detected']:>17.1f} {row['detected_to_job']:>15.1f} {row['detected_to_back']:>24.1f} "
              f"{row['fault_to_back']:>21.1f}  {row['verification']}: {row['reason']}")


if __name__ == "__main__":
    main()
