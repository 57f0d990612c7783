"""Job kinds of the deployments app (registered when the job runner loads `<app>.jobs`)."""
from portal.jobs.services import job_kind

from . import notifications  # noqa: F401  (registers notification.send)
from .models import Deployment
from .monitoring.probing import probe_environments
from .monitoring.verification import start_verification
from .rollout import execute


@job_kind("deployment.apply", queue="deploy", title="Apply deployment")
def apply_deployment_job(job, log):
    result = execute(job.params["deployment"], log)
    _start_verification(job, log)
    return result


def _start_verification(job, log):
    """The verification window opens as soon as the deployment succeeded (the periodic step catches up otherwise)."""

    deployment = Deployment.objects.select_related("environment", "service").get(pk=job.params["deployment"])
    verification = start_verification(deployment)
    try:  # the board shows the new release at once

        outcomes = probe_environments([deployment.environment_id])
    except Exception as exc:  # noqa: BLE001 - a failed probe here fails nothing; the periodic probe retries
        log.warning(f"health not probed: {exc}")
    else:
        for outcome in outcomes:
            if outcome.service_id == deployment.service_id:
                log(f"health of {deployment.service.name}: {outcome.status} ({outcome.ready}/{outcome.desired} ready)")
    log(f"verification {verification.state}: window {verification.settings_snapshot.get('window_seconds')} s"
        + (f", rules {', '.join(r['name'] for r in verification.rules)}" if verification.rules else ", metric rules off"))
