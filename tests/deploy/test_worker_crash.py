"""A real `manage.py rqworker` killed with SIGKILL in the middle of a deployment; the retry finishes it."""
import django_rq
import pytest

from deployments.models import Deployment
from portal.jobs.models import Job
from portal.jobs.services import reap_stale_jobs, retry_job

from tests.workers import kill_worker_and_work_horse, start_worker, wait_for

from .conftest import queue_deployment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_queues():
    django_rq.get_connection("deploy").flushdb()
    yield
    django_rq.get_connection("deploy").flushdb()


def deploy_worker(*args):
    return start_worker("deploy", *args)


def test_a_deployment_survives_a_killed_worker(admin, deployer, prod, make_service, sandbox, settings):
    settings.GANTRY_JOB_AUTO_RETRIES = 0  # automatic retries used up: a person retries (tests/faults for the rest)
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
