"""A real `manage.py rqworker` killed with SIGKILL in the middle of a deployment; the retry finishes it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import django_rq
import pytest
from django.db import connection

from deployments.models import Deployment
from portal.jobs.models import Job
from portal.jobs.services import reap_stale_jobs, retry_job

from .conftest import queue_deployment

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_queues():
    django_rq.get_connection("deploy").flushdb()
    yield
    django_rq.get_connection("deploy").flushdb()


def deploy_worker(*args):
    """`manage.py rqworker ... deploy` against the test database, beating its heartbeat every second."""
    db = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="1", GANTRY_JOB_HEARTBEAT_SECONDS="1",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    return subprocess.Popen([sys.executable, "manage.py", "rqworker", *args, "deploy"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_worker_and_work_horse(pid):
    """SIGKILL the worker and the work horse it forked."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for target in [pid, *map(int, children)]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_deployment_survives_a_killed_worker(admin, deployer, prod, make_service, sandbox):
    make_service("web")
    sandbox.set_fault("web", "never_ready")  # the rollout waits, so the worker is killed mid-deployment
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    worker = deploy_worker()
    try:
        assert wait_for(lambda: Job.objects.filter(pk=deployment.job_id, log_lines__message="applied Deployment prod/web")
                        .exists(), timeout=30), "the worker never applied the Deployment"
    finally:
        kill_worker_and_work_horse(worker.pid)
        worker.wait(timeout=10)
    assert Deployment.objects.get(pk=deployment.pk).state == "running"
    assert wait_for(lambda: reap_stale_jobs() == 1, timeout=15)
    job = Job.objects.get(pk=deployment.job_id)
    assert job.state == "failed" and "stopped responding" in job.error
    assert Deployment.objects.get(pk=deployment.pk).state == "running"  # the reaper fails jobs, not deployments

    sandbox.set_fault("web", "clear")
    retry_job(job, user=admin)
    output, _ = deploy_worker("--burst").communicate(timeout=60)
    job.refresh_from_db()
    assert job.state == "succeeded", output + job.error
    assert job.attempts == 2
    deployment = Deployment.objects.get(pk=deployment.pk)
    assert deployment.state == "succeeded", deployment.error
    assert [d["metadata"]["name"] for d in sandbox.list("deployments", "prod")] == ["web"]
    assert sandbox.get("deployments", "web", "prod")["status"]["readyReplicas"] == 1
    lines = list(job.log_lines.values_list("message", flat=True))
    assert any("was already running (an earlier attempt was interrupted)" in line for line in lines)
