"""A worker SIGKILLed in the middle of a deployment: the reaper fails the attempt with the reason
and sends the job again; another worker carries the deployment to its end. No person needed."""
import pytest

from deployments.models import Deployment
from portal import kube
from portal.audit.models import AuditEvent
from portal.jobs.models import Job
from portal.jobs.services import reap_stale_jobs
from tests.deploy.conftest import queue_deployment
from tests.workers import kill_worker_and_work_horse, start_worker, wait_for

from .conftest import assert_audit_chain_intact

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_killed_worker_s_deployment_is_sent_again_and_finishes(deployer, cluster, sandbox, make_env, make_service,
                                                                  redis_server, worker_env):
    kube.ensure_namespace(cluster, "prod", {})
    prod = make_env("prod", tier="production", cluster=cluster, required_approvals=0)
    make_service("web")
    sandbox.set_fault("web", "never_ready")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    worker = start_worker("deploy", env=worker_env)
    try:
        assert wait_for(lambda: Job.objects.filter(pk=deployment.job_id, log_lines__message="applied Deployment prod/web")
                        .exists(), timeout=60), "the worker never applied the Deployment"
    finally:
        kill_worker_and_work_horse(worker.pid)
        worker.wait(timeout=10)
    assert wait_for(lambda: reap_stale_jobs() == 1, timeout=15)
    job = Job.objects.get(pk=deployment.job_id)
    assert job.state == "queued"  # failed for this attempt, sent again at once
    lines = list(job.log_lines.values_list("message", flat=True))
    assert any(line.startswith("the worker") and "stopped responding" in line for line in lines)
    assert any("sent again automatically (attempt 2 of at most 3)" in line for line in lines)
    assert AuditEvent.objects.filter(action="job.failed", actor="gantry-reaper").exists()
    assert AuditEvent.objects.filter(action="job.retried", actor="gantry-reaper").exists()

    sandbox.set_fault("web", "clear")
    output, _ = start_worker("deploy", "--burst", env=worker_env).communicate(timeout=90)
    job.refresh_from_db()
    assert job.state == "succeeded", output
    assert job.attempts == 2
    assert Deployment.objects.get(pk=deployment.pk).state == "succeeded"
    assert not Job.objects.filter(state="running").exists()
    assert_audit_chain_intact()


def test_a_job_whose_workers_keep_dying_ends_failed_with_the_reason(admin, redis_server, settings):
    """Automatic retries are bounded: after GANTRY_JOB_AUTO_RETRIES the job stays failed."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from environments.models import Cluster
    from environments.clusters import check_cluster

    settings.GANTRY_JOB_AUTO_RETRIES = 1
    cluster = Cluster.objects.create(name="c", mode="server", server="http://127.0.0.1:9")
    with transaction.atomic():
        job = check_cluster(admin, cluster)
    for attempt in (1, 2):  # a worker takes it and dies, twice
        Job.objects.filter(pk=job.pk).update(state="running", attempts=attempt, worker=f"gone:{attempt}",
                                             heartbeat_at=timezone.now() - timedelta(minutes=5))
        assert reap_stale_jobs() == 1
    job.refresh_from_db()
    assert job.state == "failed"
    assert "stopped responding" in job.error and "Retry it from the job page" in job.error
