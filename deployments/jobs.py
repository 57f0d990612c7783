"""Job kinds of the deployments app (registered when the job runner loads `<app>.jobs`)."""
from portal.jobs.services import job_kind

from . import notifications  # noqa: F401  (registers notification.send)


@job_kind("deployment.apply", queue="deploy", title="Apply deployment")
def apply_deployment_job(job, log):
    from .executor import execute

    return execute(job.params["deployment"], log)
