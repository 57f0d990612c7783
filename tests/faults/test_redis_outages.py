"""Redis down, flushed or restarted: jobs wait `queued` and are sent again, never failed or lost."""
import pytest
from django.db import transaction
from django.test import Client

from environments.models import Environment
from environments.lifecycle import create_environment
from portal.audit.models import AuditEvent
from portal.jobs import queue
from portal.jobs.models import Job
from portal.jobs.reconcile import RESENT, reconcile_jobs
from tests.workers import start_worker

from .conftest import assert_audit_chain_intact

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_grace(settings):
    settings.GANTRY_RECONCILE_GRACE_SECONDS = 0


def run_worker_until_idle(worker_env):
    output, _ = start_worker("default", "--burst", env=worker_env).communicate(timeout=90)
    return output


def log_of(job):
    return list(Job.objects.get(pk=job.pk).log_lines.values_list("message", flat=True))


def test_redis_down_when_an_environment_is_requested_leaves_its_job_queued_until_redis_answers(
        admin, api, cluster, redis_server, worker_env):
    redis_server.stop()
    response = api(admin).post("/api/v1/environments", {"name": "Feature 42", "tier": "preview", "cluster": "sandbox"})
    assert response.status_code == 201, response.content
    job = Job.objects.get(kind="environment.provision")
    assert job.state == "queued" and job.error == ""
    assert any("queue unreachable, will retry" in line for line in log_of(job))
    assert Environment.objects.get(slug="feature-42").status == "provisioning"

    # Everything that needs no worker keeps answering; /readyz names Redis.
    browser = Client()
    browser.force_login(admin)
    assert browser.get("/").status_code == 200
    assert browser.get(f"/jobs/{job.pk}/").status_code == 200
    assert api(admin).get("/api/v1/environments").status_code == 200
    ready = browser.get("/readyz")
    assert ready.status_code == 503 and "redis" in ready.json()["failing"]
    for_web = browser.get("/readyz?need=database")
    assert for_web.status_code == 200 and for_web.json()["checks"] == {"database": "ok", "redis": "down"}

    # While Redis is down the reconcile pass changes nothing.
    assert reconcile_jobs()["queue"] == "unreachable"
    assert Job.objects.get(pk=job.pk).state == "queued"

    redis_server.start()  # back, empty
    assert reconcile_jobs()["resent"] == 1
    assert RESENT in log_of(job)
    output = run_worker_until_idle(worker_env)
    job.refresh_from_db()
    assert job.state == "succeeded", output
    assert job.attempts == 1
    assert Environment.objects.get(slug="feature-42").status == "ready"
    assert_audit_chain_intact()


def test_a_flushed_queue_is_refilled_from_the_rows_and_each_job_runs_once(admin, cluster, redis_server, worker_env):
    envs = [create_environment(admin, {"name": f"Team {n}", "tier": "development", "cluster": "sandbox"}) for n in range(3)]
    jobs = list(Job.objects.filter(kind="environment.provision"))
    assert len(jobs) == 3 and all(queue.message_id(job) in queue.held_message_ids(["default"]) for job in jobs)
    assert reconcile_jobs()["resent"] == 0  # every message is where it should be

    redis_server.flush()  # as a restart without persistence, or an eviction, does
    assert reconcile_jobs() == {"resent": 3, "checked": 3}
    assert reconcile_jobs()["resent"] == 0  # sent once, not at every pass
    output = run_worker_until_idle(worker_env)
    for job in jobs:
        job.refresh_from_db()
        assert job.state == "succeeded", output
        assert job.attempts == 1
    assert {env.status for env in Environment.objects.filter(pk__in=[e.pk for e in envs])} == {"ready"}
    assert AuditEvent.objects.filter(action="job.started").count() == 3
    assert_audit_chain_intact()


def test_a_job_sent_twice_runs_once(admin, cluster, redis_server, worker_env):
    create_environment(admin, {"name": "Twice", "tier": "development", "cluster": "sandbox"})
    job = Job.objects.get(kind="environment.provision")
    queue.send(job)  # a duplicate message, as a re-send racing a slow worker would leave
    output = run_worker_until_idle(worker_env)
    job.refresh_from_db()
    assert job.state == "succeeded", output
    assert job.attempts == 1
    assert AuditEvent.objects.filter(action="job.started", target_id=str(job.pk)).count() == 1
    assert log_of(job).count("finished") == 1


def test_a_retry_while_redis_is_down_waits_queued(admin, redis_server, worker_env):
    from environments.models import Cluster
    from environments.clusters import check_cluster

    cluster = Cluster.objects.create(name="dead", mode="server", server="http://127.0.0.1:9")
    with transaction.atomic():
        job = check_cluster(admin, cluster)
    run_worker_until_idle(worker_env)
    job.refresh_from_db()
    assert job.state == "failed"

    from portal.jobs.services import retry_job

    redis_server.stop()
    retry_job(job, user=admin)
    job.refresh_from_db()
    assert job.state == "queued"
    assert log_of(job)[-1].startswith("queue unreachable, will retry")
    redis_server.start()
    assert reconcile_jobs()["resent"] == 1
    run_worker_until_idle(worker_env)
    job.refresh_from_db()
    assert job.state == "failed" and job.attempts == 2  # ran again (the cluster is still unreachable)
    assert_audit_chain_intact()
