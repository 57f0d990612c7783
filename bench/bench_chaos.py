"""Chaos: 200 deployments and 50 environment creations while Redis is flushed twice and restarted
once and a worker is killed three times. Nothing may be stuck or lost.

Everything is real and started here: a throwaway `redis-server` (no persistence, so a restart
loses the queue, the worst case), three `manage.py rqworker` processes (a killed one is replaced
a second later, as a supervisor would), the scheduler (`manage.py scheduler`, Gantry's periodic
work with its default periods: reconcile 30 s, reaper 20 s), the sandbox cluster over HTTP, and
a fresh PostgreSQL database `gantry_bench_chaos` on 127.0.0.1:5432 (dropped and created again;
BENCH_CHAOS_DATABASE_URL overrides). Requests go through the API (`/api/v1/...`) of this process.

    .venv/bin/python bench/bench_chaos.py [--deployments 200] [--environments 50] [--drain 240]

Prints, for deployments and environments: finished, failed with a reason, stuck (not final when
the drain ended; goal 0), lost (accepted but with no job and not waiting behind another deployment of the same service
that has one, or a queued job in no RQ place; goal 0);
how many were hit by a fault (their job log says it waited for or was re-sent to the queue, or
was retried after its worker died), and the time from request to final state for those and for
the others: the longest delay a fault caused is the max of the first against the p50 of the second.
"""
import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.throwaway import ThrowawayRedis

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/gantry_bench_chaos"
FAULT_MARKS = ("queue unreachable", "not found in the job queue", "sent again automatically", "stopped responding")


def fresh_database():
    import psycopg

    url = os.environ.get("BENCH_CHAOS_DATABASE_URL") or DEFAULT_URL
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
                         password=parts.password, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def setup_django(database_url, redis_url):
    os.environ.update(DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="1", DATABASE_URL=database_url,
                      REDIS_URL=redis_url, ALLOWED_HOSTS="testserver,localhost,127.0.0.1")
    os.environ.pop("GANTRY_JOBS_EAGER", None)
    os.environ.setdefault("GANTRY_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    started = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"bench: database migrated in {time.monotonic() - started:.1f} s", file=sys.stderr)


class Processes:
    """Workers and the scheduler as subprocesses; a killed worker is replaced after a second."""

    def __init__(self, env, workers=3):
        self.env = dict(os.environ, **env)
        self.logdir = Path(os.environ.get("BENCH_CHAOS_LOGS", "/tmp")) / f"gantry-chaos-{os.getpid()}"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.workers = [self._start("worker", n) for n in range(workers)]
        self.scheduler = self._start("scheduler", 0)
        self.kills = 0

    def _start(self, what, n):
        command = (["rqworker", "deploy", "default", "health", "backups"] if what == "worker" else ["scheduler"])
        # the child keeps writing to its log after this returns; the file is closed with the process
        log = open(self.logdir / f"{what}-{n}-{time.monotonic():.0f}.log", "w")  # noqa: SIM115
        return subprocess.Popen([sys.executable, "manage.py", *command], cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)

    def kill_busy_worker(self):
        """SIGKILL a worker (and its work horse) that is running a job if one is, else the first."""
        victim = None
        for proc in self.workers:
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            if children:
                victim = (proc, children)
                break
        proc, children = victim or (self.workers[0], [])
        for pid in [proc.pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.kills += 1
        index = self.workers.index(proc)
        time.sleep(1)
        self.workers[index] = self._start("worker", index)
        return bool(children)

    def stop(self):
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def seed(envs, services, versions):
    from django.contrib.auth import get_user_model

    from deployments.models import Service
    from environments.models import Cluster, Environment
    from portal import kube
    from portal.accounts.models import ApiToken, RoleAssignment
    from portal.sandbox import SandboxCluster
    from tests.fixtures_data import WEB_MANIFEST

    sandbox = SandboxCluster(port=0)
    sandbox.start()
    user = get_user_model().objects.create_user("chaos-ci", password=None)
    RoleAssignment.objects.create(user=user, role="admin")
    raw, prefix, digest = ApiToken.generate()
    ApiToken.objects.create(user=user, prefix=prefix, digest=digest)
    cluster = Cluster.objects.create(name="sandbox", mode="server", server=sandbox.url, is_sandbox=True)
    for n in range(envs):
        slug = f"dev-{n:02d}"
        kube.ensure_namespace(cluster, slug, {})
        Environment.objects.create(slug=slug, name=f"Dev {n:02d}", tier="development", cluster=cluster, namespace=slug,
                                   status="ready", required_approvals=0)
    for n in range(services):
        Service.objects.create(name=f"svc-{n}", manifest=WEB_MANIFEST)
    return sandbox, raw


def api(token):
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(path, body):
        return client.post(f"/api/v1{path}", body, content_type="application/json")

    return post


def requests_plan(n_deployments, n_envs, services, versions, n_new_envs):
    """The order requests are made in: deployments round-robin over (env, service) pairs, each
    pair's versions in order; environment creations interleaved."""
    pairs = [(f"dev-{e:02d}", f"svc-{s}") for e in range(n_envs) for s in range(services)]
    deploys = [(env, svc, f"1.0.{v}") for v in range(versions) for env, svc in pairs][:n_deployments]
    plan, every = [], max(1, len(deploys) // max(1, n_new_envs))
    for i, item in enumerate(deploys):
        plan.append(("deploy", item))
        if i % every == every - 1 and sum(kind == "env" for kind, _ in plan) < n_new_envs:
            plan.append(("env", f"chaos-{len(plan):03d}"))
    while sum(kind == "env" for kind, _ in plan) < n_new_envs:
        plan.append(("env", f"chaos-{len(plan):03d}"))
    return plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--submit-seconds", type=float, default=60, help="spread the requests over this long")
    parser.add_argument("--drain", type=float, default=240, help="give up waiting for final states after this")
    args = parser.parse_args()

    redis = ThrowawayRedis().start()
    database_url = fresh_database()
    setup_django(database_url, redis.url)
    from django.db import close_old_connections

    from deployments.models import Deployment
    from environments.models import Environment
    from portal.jobs import queue as job_queue
    from portal.jobs.models import Job

    n_envs, services = 10, 4
    versions = -(-args.deployments // (n_envs * services))
    sandbox, token = seed(n_envs, services, versions)
    post = api(token)
    from tests.fixtures_data import WEB_MANIFEST  # noqa: F401  (seeded above)

    digest = "sha256:" + "c" * 64
    release_ids = {}
    for s in range(services):
        for v in range(versions):
            response = post("/releases", {"service": f"svc-{s}", "version": f"1.0.{v}",
                                          "image": f"registry.example.com/chaos/svc-{s}:1.0.{v}@{digest}"})
            assert response.status_code == 201, response.content
            release_ids[(f"svc-{s}", f"1.0.{v}")] = response.json()["id"]

    procs = Processes({"DATABASE_URL": database_url, "REDIS_URL": redis.url, "GANTRY_LOG_LEVEL": "WARNING"})
    plan = requests_plan(args.deployments, n_envs, services, versions, args.environments)
    faults = []  # (seconds from start, what)
    started = time.monotonic()

    def fault_thread():
        schedule = [(0.15, "flush"), (0.25, "kill"), (0.45, "restart"), (0.6, "kill"), (0.75, "flush"), (0.9, "kill")]
        for fraction, what in schedule:
            time.sleep(max(0.0, started + fraction * args.submit_seconds - time.monotonic()))
            at = time.monotonic() - started
            if what == "flush":
                redis.flush()
            elif what == "restart":
                redis.stop()
                time.sleep(3)  # down for 3 s: requests made meanwhile find no queue
                redis.start()
            else:
                what += " (mid-job)" if procs.kill_busy_worker() else " (idle)"
            faults.append((at, what))

    chaos = threading.Thread(target=fault_thread, daemon=True)
    chaos.start()
    refused = []
    deployment_ids, env_slugs = [], []
    for i, (kind, item) in enumerate(plan):
        time.sleep(max(0.0, started + i * args.submit_seconds / len(plan) - time.monotonic()))
        if kind == "deploy":
            env, svc, version = item
            response = post("/deployments", {"release": release_ids[(svc, version)], "environment": env})
            if response.status_code == 201:
                deployment_ids.append(response.json()["id"])
            else:
                refused.append((kind, item, response.status_code, response.content[:200]))
        else:
            response = post("/environments", {"name": item.replace("-", " ").title(), "tier": "development",
                                              "cluster": "sandbox"})
            if response.status_code == 201:
                env_slugs.append(response.json()["slug"])
            else:
                refused.append((kind, item, response.status_code, response.content[:200]))
    chaos.join()
    submitted = time.monotonic() - started

    final_d = {"succeeded", "failed", "cancelled", "rejected", "rolled_back"}
    final_e = {"ready", "failed"}

    def all_final():
        close_old_connections()
        d = Deployment.objects.filter(pk__in=deployment_ids).exclude(state__in=final_d).count()
        e = Environment.objects.filter(slug__in=env_slugs).exclude(status__in=final_e).count()
        return d + e == 0

    deadline = time.monotonic() + args.drain
    while not all_final() and time.monotonic() < deadline:
        time.sleep(1)
    drained = time.monotonic() - started
    procs.stop()

    # --- classify -------------------------------------------------------------------------------
    try:
        held = job_queue.held_message_ids(["deploy", "default", "health", "backups"])
    except job_queue.QueueUnreachable:
        held = set()

    def fault_hit(job):
        return job is not None and job.log_lines.filter(
            message__regex="|".join(FAULT_MARKS)).exists()

    def latency(requested_at, job):
        end = job.finished_at if job is not None and job.finished_at else None
        return (end - requested_at).total_seconds() if end else None

    rows = []
    # A deployment queued behind another of the same service in the same environment has no job
    # until that one ends (deployments.scheduling): waiting, not lost, when that one has a job.
    active_pairs = set(Deployment.objects.filter(pk__in=deployment_ids, job__isnull=False)
                       .exclude(state__in=final_d).values_list("service_id", "environment_id"))
    pair_of = dict((pk, (s, e)) for pk, s, e in Deployment.objects.filter(pk__in=deployment_ids)
                   .values_list("pk", "service_id", "environment_id"))

    def waiting_behind(row):
        return row[0] == "deployment" and pair_of.get(row[8]) in active_pairs

    for d in Deployment.objects.filter(pk__in=deployment_ids).select_related("job"):
        rows.append(("deployment", d.state, d.state == "succeeded", d.state == "failed" and bool(d.error),
                     d.state not in final_d, d.job, d.requested_at, d.error, d.pk))
    for env in Environment.objects.filter(slug__in=env_slugs):
        job = Job.objects.filter(kind="environment.provision", target_id=str(env.pk)).order_by("-created_at").first()
        rows.append(("environment", env.status, env.status == "ready", env.status == "failed",
                     env.status not in final_e, job, env.created_at, job.error if job else "", env.pk))

    print(f"chaos: {len(deployment_ids)} deployments over {n_envs} environments x {services} services, "
          f"{len(env_slugs)} environment creations; 3 workers, scheduler with default periods")
    print(f"requests: {len(deployment_ids) + len(env_slugs)} accepted, {len(refused)} refused, "
          f"submitted in {submitted:.0f} s; all final after {drained:.0f} s"
          + ("" if all_final() else f" (drain limit {args.drain:.0f} s reached)"))
    print("faults: " + ", ".join(f"{what} at {at:.0f} s" for at, what in faults))
    print()
    print(f"{'':12} {'total':>6} {'finished':>9} {'failed*':>8} {'stuck':>6} {'lost':>5} {'hit':>5} "
          f"{'p50 s':>7} {'max s (hit)':>12}")
    worst = 0.0
    baseline_all = []
    for what in ("deployment", "environment"):
        mine = [r for r in rows if r[0] == what]
        finished = sum(r[2] for r in mine)
        failed = sum(r[3] for r in mine)
        stuck = sum(r[4] for r in mine)
        lost = sum(1 for r in mine if r[4] and ((r[5] is None and not waiting_behind(r))
                                                or (r[5] is not None and r[5].state == "queued"
                                                    and job_queue.message_id(r[5]) not in held)))
        hit = [r for r in mine if fault_hit(r[5])]
        normal = [latency(r[6], r[5]) for r in mine if r not in hit and latency(r[6], r[5]) is not None]
        hit_lat = [latency(r[6], r[5]) for r in hit if latency(r[6], r[5]) is not None]
        baseline_all += normal
        p50 = statistics.median(normal) if normal else 0.0
        worst_here = max(hit_lat) if hit_lat else 0.0
        worst = max(worst, worst_here - p50)
        print(f"{what + 's':12} {len(mine):>6} {finished:>9} {failed:>8} {stuck:>6} {lost:>5} {len(hit):>5} "
              f"{p50:>7.1f} {worst_here:>12.1f}")
    print("* failed with a reason (the job's error says why)")
    print(f"longest delay a fault caused: {worst:.0f} s (slowest fault-hit item against the p50 of the others)")
    reasons = sorted({r[7][:90] for r in rows if r[3]})
    for reason in reasons[:5]:
        print(f"  failure reason: {reason}")
    for item in refused[:5]:
        print(f"  refused: {item}")
    stuck_rows = [r for r in rows if r[4]]
    for r in stuck_rows[:5]:
        print(f"  stuck: {r[0]} {r[1]} job {r[5].state if r[5] else None}")
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    with contextlib.suppress(SystemExit):
        call_command("audit_verify", stdout=out, stderr=out)
    print(out.getvalue().strip())
    print(f"process logs: {procs.logdir}")
    sandbox.stop()
    redis.close()
    return 0 if not stuck_rows else 1


if __name__ == "__main__":
    sys.exit(main())
