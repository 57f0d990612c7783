"""The deployment state machine and its locking.

Every state change of a deployment happens through `move`, inside a transaction that first locks
the environment row (`lock_environment`): all changes to one environment's deployments are
serialized, so two approvers clicking at once give exactly their two approvals and at most one
job, and two deployments of one service to one environment never run together.
"""
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from environments.models import Environment
from portal.audit.services import record
from portal.errors import Conflict, NotFound

from . import facts, policies
from .choices import DEPLOY, DEPLOYMENT_TRANSITIONS, DeploymentState as S
from .models import Deployment
from .rendering import manifest_hash, render_text


class StateError(Conflict):
    pass


def lock_environment(environment_id):
    return Environment.objects.select_for_update().get(pk=environment_id)


def move(deployment, new_state, *, actor=None, actor_name=None, request=None, detail=None, outcome="success"):
    old = deployment.state
    if new_state not in DEPLOYMENT_TRANSITIONS[old]:
        raise StateError(f"deployment #{deployment.pk} is {old.replace('_', ' ')} and cannot become "
                         f"{new_state.replace('_', ' ')}")
    deployment.state = new_state
    now = timezone.now()
    if new_state == S.RUNNING:
        deployment.started_at = now
    if new_state in S.FINISHED:
        deployment.finished_at = deployment.finished_at or now
    deployment.save()
    record(f"deployment.{new_state}", actor=actor, actor_name=actor_name, request=request, target=deployment,
           environment=deployment.environment, outcome=outcome, changes={"state": [old, new_state]},
           detail=(detail or {}) | ({"break_glass": True} if deployment.break_glass else {})
           | (facts.start_facts(deployment) if new_state in (S.QUEUED, S.RUNNING) else {}))
    from .notifications import notify

    notify(deployment, new_state)
    return deployment


def current_manifest_hash(deployment):
    """The manifests an approval given now is bound to: an open request is re-rendered from today's
    service template and environment; a started or finished deployment, and any rollback, keeps
    what it recorded."""
    if deployment.kind == DEPLOY and deployment.state in (S.PENDING_APPROVAL, S.APPROVED, S.QUEUED):
        return manifest_hash(deployment.service, deployment.release, deployment.environment)
    return deployment.manifest_hash


def advance(deployment, *, actor_name="gantry"):
    """Move a deployment as far as its approvals, window and freeze allow. Call with the environment locked."""
    current = current_manifest_hash(deployment)
    if current != deployment.manifest_hash and deployment.state in (S.PENDING_APPROVAL, S.APPROVED):
        old = deployment.manifest_hash
        deployment.manifest_hash = current
        deployment.rendered_manifest = render_text(deployment.service, deployment.release, deployment.environment)
        deployment.save(update_fields=["manifest_hash", "rendered_manifest", "updated_at"])
        record("deployment.manifests_changed", actor_name=actor_name, target=deployment, environment=deployment.environment,
               changes={"manifest_hash": [old, current]}, detail={"reason": "earlier approvals no longer count"})
    approved_enough = len(policies.valid_approvals(deployment)) >= policies.approvals_required(deployment)
    if deployment.state == S.APPROVED and not approved_enough:
        move(deployment, S.PENDING_APPROVAL, actor_name=actor_name,
              detail={"reason": "what was approved changed before the deployment started"})
    if deployment.state == S.PENDING_APPROVAL and approved_enough:
        move(deployment, S.APPROVED, actor_name=actor_name)
    if deployment.state == S.APPROVED and policies.start_blocker(deployment) is None:
        move(deployment, S.QUEUED, actor_name=actor_name)
    if deployment.state == S.QUEUED and deployment.job_id is None:
        _start_job_if_free(deployment)
    return deployment


def _start_job_if_free(deployment):
    """Give a queued deployment its job, unless another of the same service and environment is ahead of it."""
    ahead = (Deployment.objects.filter(service_id=deployment.service_id, environment_id=deployment.environment_id)
             .filter(state__in=[S.QUEUED, S.RUNNING]).exclude(pk=deployment.pk))
    if ahead.filter(state=S.RUNNING).exists() or ahead.filter(job__isnull=False).exclude(job__state="failed").exists():
        return None
    if ahead.filter(requested_at__lt=deployment.requested_at).exists():
        return None
    from portal.jobs.services import enqueue_job

    job = enqueue_job("deployment.apply", target=deployment, environment=deployment.environment,
                      requested_by=deployment.requested_by, params={"deployment": deployment.pk})
    deployment.job = job
    deployment.save(update_fields=["job", "updated_at"])
    return job


def start_next_queued(service_id, environment_id):
    """After a deployment ends, the oldest one waiting for the same service and environment gets its job."""
    with transaction.atomic():
        lock_environment(environment_id)
        waiting = (Deployment.objects.select_related("release__service", "service", "environment")
                   .filter(service_id=service_id, environment_id=environment_id, state=S.QUEUED)
                   .filter(Q(job__isnull=True) | Q(job__state="failed"))  # never ran: its enqueue failed
                   .order_by("requested_at", "id").first())
        if waiting is not None:
            _start_job_if_free(waiting)


def locked_deployment(pk):
    return (Deployment.objects.select_for_update(of=("self",))
            .select_related("release__service", "service", "environment", "requested_by").get(pk=pk))


def get_deployment(pk):
    deployment = (Deployment.objects.select_related("release__service", "service", "environment", "requested_by", "job")
                  .filter(pk=pk).first())
    if deployment is None:
        raise NotFound(f"no deployment #{pk}")
    return deployment
