"""Job kinds of the deployments app (registered when the job runner loads `<app>.jobs`)."""
from portal import kube
from portal.jobs.services import job_kind

from . import notifications  # noqa: F401  (registers notification.send)


@job_kind("deployment.apply", queue="deploy", title="Apply deployment")
def apply_deployment_job(job, log):
    from .rollout import execute

    result = execute(job.params["deployment"], log)
    _refresh_health(job, log)
    return result


def _refresh_health(job, log):
    """Show the new health at once rather than at the next poll; a failure here fails nothing."""
    from .health import poll_environment
    from .models import Deployment

    deployment = Deployment.objects.select_related("environment__cluster").filter(pk=job.params["deployment"]).first()
    if deployment is None:
        return
    try:
        rows = poll_environment(deployment.environment)
    except (kube.KubeError, ValueError, OSError) as exc:
        log.warning(f"health not refreshed: {exc}")
        return
    for row in rows:
        if row.service_id == deployment.service_id:
            log(f"health of {deployment.service.name}: {row.status} ({row.ready_replicas}/{row.desired_replicas} ready)")
