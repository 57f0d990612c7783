"""What the deploy job reports: a deployment starts running, succeeds or fails (called by `rollout`)."""
from django.db import transaction

from . import policies
from .choices import DEPLOY, ROLLBACK
from .choices import DeploymentState as S
from .live import live_deployment
from .models import Deployment
from .rendering import manifest_hash
from .state import StateError, lock_environment, locked_deployment, move, start_next_queued


def mark_running(deployment_id):
    """The deploy job starts: queued -> running. Refuses when what was approved changed."""
    with transaction.atomic():
        lock_environment(Deployment.objects.values_list("environment_id", flat=True).get(pk=deployment_id))
        deployment = locked_deployment(deployment_id)
        if deployment.kind == DEPLOY and manifest_hash(deployment.service, deployment.release,
                                                       deployment.environment) != deployment.manifest_hash:
            raise StateError("the service's manifests changed after approval; request the deployment again")
        if deployment.kind == ROLLBACK and deployment.rollback_of_id:
            live = live_deployment(deployment.service_id, deployment.environment_id)
            if live is None or live.pk != deployment.rollback_of_id:
                raise StateError(f"deployment #{deployment.rollback_of_id} is no longer what runs "
                                 f"(#{live.pk if live else '-'} is); this rollback would undo a newer release")
        if deployment.state == S.RUNNING:
            return deployment  # a retry after a crash: carry on (apply is idempotent)
        if len(policies.valid_approvals(deployment)) < policies.approvals_required(deployment):
            raise StateError("the approvals no longer suffice (an approver lost the approver role or was "
                             f"deactivated since approving); request the deployment of {deployment.release} again")
        return move(deployment, S.RUNNING, actor_name="gantry-worker")


def finish_deployment(deployment_id, succeeded, *, error="", color="", previous_color=""):
    with transaction.atomic():
        lock_environment(Deployment.objects.values_list("environment_id", flat=True).get(pk=deployment_id))
        deployment = locked_deployment(deployment_id)
        if deployment.state != S.RUNNING:
            return deployment
        deployment.error = error[:5000]
        if color:
            deployment.color, deployment.previous_color = color, previous_color
        move(deployment, S.SUCCEEDED if succeeded else S.FAILED, actor_name="gantry-worker",
              outcome="success" if succeeded else "failure", detail={"error": error[:500]} if error else None)
        if succeeded and deployment.kind == ROLLBACK and deployment.rollback_of_id:
            rolled = locked_deployment(deployment.rollback_of_id)
            if rolled.state == S.SUCCEEDED:
                move(rolled, S.ROLLED_BACK, actor_name="gantry-worker", detail={"by": deployment.pk})
    start_next_queued(deployment.service_id, deployment.environment_id)
    return deployment


def fail_queued_deployment(deployment_id, error):
    """A deploy job that could not even start (e.g. manifests changed): the deployment fails visibly."""
    with transaction.atomic():
        lock_environment(Deployment.objects.values_list("environment_id", flat=True).get(pk=deployment_id))
        deployment = locked_deployment(deployment_id)
        if deployment.state == S.QUEUED:
            move(deployment, S.RUNNING, actor_name="gantry-worker")
        if deployment.state == S.RUNNING:
            deployment.error = error[:5000]
            move(deployment, S.FAILED, actor_name="gantry-worker", outcome="failure", detail={"error": error[:500]})
    start_next_queued(deployment.service_id, deployment.environment_id)
