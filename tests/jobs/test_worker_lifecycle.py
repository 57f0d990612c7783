"""Jobs run by a real `manage.py rqworker` process against real PostgreSQL and Redis."""
import socket

import django_rq
import pytest
from django.db import transaction

from environments.models import Cluster, Environment
from environments.lifecycle import create_environment
from portal.audit.models import AuditEvent
from portal.jobs.models import Job
from portal.jobs.services import reap_stale_jobs, retry_job
from portal.throwaway import free_port
from tests.workers import kill_worker_and_work_horse, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_queues():
    django_rq.get_connection("default").flushdb()
    yield
    django_rq.get_connection("default").flushdb()


def run_worker(*args):
    return start_worker("default", *args)


def test_a_worker_provisions_an_environment_on_the_sandbox(admin, cluster, sandbox):
    env = create_environment(admin, {"name": "Team A Dev", "tier": "development", "cluster": "sandbox"})
    job = Job.objects.get(kind="environment.provision")
    assert job.state == "queued"
    worker = run_worker("--burst")
    output, _ = worker.communicate(timeout=60)
    job.refresh_from_db()
    assert job.state == "succeeded", output
    assert job.started_at and job.finished_at and job.attempts == 1
    assert Environment.objects.get(pk=env.pk).status == "ready"
    lines = list(job.log_lines.values_list("message", flat=True))
    assert any("namespace team-a-dev is ready" in line for line in lines)
    from portal import kube

    namespace = kube.get(cluster, "v1", "Namespace", "", "team-a-dev")
    assert namespace["metadata"]["labels"]["gantry.dev/environment"] == "team-a-dev"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"job.queued", "job.started", "job.succeeded", "environment.ready"} <= actions


def test_a_cluster_error_fails_the_job_with_a_readable_reason(admin):
    dead_port = free_port()  # nothing listens there
    Cluster.objects.create(name="gone", mode="server", server=f"http://127.0.0.1:{dead_port}")
    env = create_environment(admin, {"name": "Orphan", "tier": "development", "cluster": "gone"})
    worker = run_worker("--burst")
    output, _ = worker.communicate(timeout=60)
    job = Job.objects.get(kind="environment.provision")
    assert job.state == "failed", output
    assert "cannot reach the cluster" in job.error
    assert Environment.objects.get(pk=env.pk).status == "failed"


def test_a_killed_worker_leaves_a_job_the_reaper_marks_failed_and_a_retry_finishes_it(admin, sandbox, settings):
    settings.GANTRY_JOB_AUTO_RETRIES = 0  # automatic retries used up: a person retries (tests/faults for the rest)
    # A cluster that accepts connections and never answers keeps the job running.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        port = silent.getsockname()[1]
        cluster = Cluster.objects.create(name="slow", mode="server", server=f"http://127.0.0.1:{port}")
        with transaction.atomic():
            from environments.clusters import check_cluster

            job = check_cluster(admin, cluster)
        worker = run_worker()
        try:
            assert wait_for(lambda: Job.objects.get(pk=job.pk).state == "running", timeout=60), \
                "the worker never started the job"
        finally:  # never leave a worker behind to take the next test's jobs
            kill_worker_and_work_horse(worker.pid)
            worker.wait(timeout=10)
        assert Job.objects.get(pk=job.pk).state == "running"
        assert wait_for(lambda: reap_stale_jobs() == 1, timeout=15)
        job.refresh_from_db()
        assert job.state == "failed"
        assert "stopped responding" in job.error
        assert AuditEvent.objects.filter(action="job.failed", actor="gantry-reaper").exists()
    finally:
        silent.close()

    # Point the cluster at a working API and retry: the same job row finishes.
    Cluster.objects.filter(pk=cluster.pk).update(server=sandbox.url)
    retry_job(job, user=admin)
    worker = run_worker("--burst")
    output, _ = worker.communicate(timeout=60)
    job.refresh_from_db()
    assert job.state == "succeeded", output
    assert job.attempts == 2
    assert Cluster.objects.get(pk=cluster.pk).last_check_ok is True
