"""A deployment interrupted half-way finishes on a retry, with nothing applied twice."""
import pytest

from deployments import rollout, worker_callbacks
from deployments.worker_callbacks import mark_running
from portal.jobs.models import Job
from portal.jobs.services import retry_job, run_job

from .conftest import Log, image, queue_deployment, state_of

pytestmark = pytest.mark.django_db


class WorkerDied(Exception):
    """Stands in for a worker that stops in the middle of a job."""


def die_once(monkeypatch, module, name):
    real = getattr(module, name)
    calls = []

    def dying(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise WorkerDied("the worker stopped here")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)
    return calls


def test_a_retry_of_a_running_deployment_finishes_it(deployer, prod, make_service, sandbox, log):
    make_service("web")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    mark_running(deployment.pk)  # the first attempt got this far
    rollout.execute(deployment.pk, log)
    assert state_of(deployment).state == "succeeded"
    assert ("warning", f"deployment #{deployment.pk} was already running (an earlier attempt was interrupted); "
                       "carrying on where it stands: applying again is safe") in log.lines
    assert [d["metadata"]["name"] for d in sandbox.list("deployments", "prod")] == ["web"]


def test_a_job_that_died_during_the_rollout_finishes_when_retried(deployer, prod, make_service, sandbox, monkeypatch):
    make_service("web")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    die_once(monkeypatch, rollout, "_wait_for_rollout")
    run_job(str(deployment.job_id))
    job = Job.objects.get(pk=deployment.job_id)
    assert job.state == "failed" and "WorkerDied" in job.error
    assert state_of(deployment).state == "running"  # the deployment itself is not over
    generation = sandbox.get("deployments", "web", "prod")["metadata"]["generation"]

    retry_job(job, user=deployer)
    run_job(str(job.pk))  # what the worker does when the retry reaches it
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    assert job.attempts == 2
    assert state_of(deployment).state == "succeeded"
    assert [d["metadata"]["name"] for d in sandbox.list("deployments", "prod")] == ["web"]
    assert [s["metadata"]["name"] for s in sandbox.list("services", "prod")] == ["web"]
    assert sandbox.get("deployments", "web", "prod")["metadata"]["generation"] == generation  # applied again, unchanged


def test_a_blue_green_retry_after_the_flip_keeps_the_colour(deployer, prod, make_service, sandbox, monkeypatch):
    make_service("web", strategy="blue-green")
    first = queue_deployment(deployer, prod, "web", "1.0.0")
    rollout.execute(first.pk, Log())
    second = queue_deployment(deployer, prod, "web", "1.1.0")
    die_once(monkeypatch, worker_callbacks, "finish_deployment")  # traffic is on green, the row does not know yet
    with pytest.raises(WorkerDied):
        rollout.execute(second.pk, Log())
    assert state_of(second).state == "running"
    assert sandbox.get("services", "web", "prod")["spec"]["selector"]["color"] == "green"

    log = Log()
    rollout.execute(second.pk, log)
    second = state_of(second)
    assert second.state == "succeeded"
    assert (second.color, second.previous_color) == ("green", "blue")  # not a second flip to blue
    assert "going on with colour green, chosen by the earlier attempt" in log.text
    assert sandbox.get("services", "web", "prod")["spec"]["selector"]["color"] == "green"
    names = sorted(d["metadata"]["name"] for d in sandbox.list("deployments", "prod"))
    assert names == ["web-blue", "web-green"]
    blue = sandbox.get("deployments", "web-blue", "prod")
    assert blue["spec"]["template"]["spec"]["containers"][0]["image"] == image("web", "1.0.0")  # rollback still possible


def test_a_finished_deployment_is_not_run_again(deployer, prod, make_service, sandbox, log):
    from portal.jobs.services import JobFailed

    make_service("web")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    rollout.execute(deployment.pk, log)
    with pytest.raises(JobFailed, match="is succeeded and cannot become running"):
        rollout.execute(deployment.pk, log)
    assert state_of(deployment).state == "succeeded"
