"""API for deployments (API.md): request, list, fetch, approve, reject, cancel, roll back."""
from ninja import Router, Status

from portal.api_auth import require_role
from portal.errors import NotFound
from portal.validation import list_limit

from . import actions
from .models import Deployment
from .queries import DEPLOYMENT_RELATED, visible_deployments
from .schemas import DeploymentApproval, DeploymentRejection, DeploymentRequest, Reason
from .serializers import DeploymentOut, DeploymentSummaryOut, deployment_out

router = Router(tags=["releases and deployments"])


def _visible_deployment(request, deployment_id):
    """The id of a deployment the caller may see, else 404: one small EXISTS (``_out`` reads the deployment)."""
    require_role(request)
    if not visible_deployments(request.user).filter(pk=deployment_id).exists():
        raise NotFound(f"no deployment #{deployment_id}")
    return deployment_id


def _out(deployment_id):
    deployment = (Deployment.objects.select_related(*DEPLOYMENT_RELATED)
                  .prefetch_related("approvals__user", "job__log_lines").get(pk=deployment_id))
    return deployment_out(deployment)


@router.post("/deployments", response={201: DeploymentOut})
def create_deployment(request, payload: DeploymentRequest):
    data = payload.dict(exclude_unset=True)
    deployment = actions.request_deployment(request.user, data, request=request)
    return Status(201, _out(deployment.pk))


@router.get("/deployments", response=list[DeploymentSummaryOut])
def list_deployments(request, environment: str | None = None, service: str | None = None,
                     state: str | None = None, limit: int = 100):
    require_role(request)
    qs = visible_deployments(request.user)
    if environment:
        qs = qs.filter(environment__slug=environment)
    if service:
        qs = qs.filter(service__name=service)
    if state:
        qs = qs.filter(state=state)
    return [deployment_out(d, with_log=False) for d in qs[:list_limit(limit)]]


@router.get("/deployments/{deployment_id}", response=DeploymentOut)
def get_deployment(request, deployment_id: int):
    """What CI polls: the deployment read once, through the visibility rule."""
    require_role(request)
    deployment = visible_deployments(request.user).prefetch_related("job__log_lines").filter(pk=deployment_id).first()
    if deployment is None:
        raise NotFound(f"no deployment #{deployment_id}")
    return deployment_out(deployment)


@router.post("/deployments/{deployment_id}/approve", response=DeploymentOut)
def approve(request, deployment_id: int, payload: DeploymentApproval = None):
    _visible_deployment(request, deployment_id)
    payload = payload or DeploymentApproval()
    actions.approve_deployment(request.user, deployment_id, comment=payload.comment, checklist=payload.checklist,
                                  seen_manifest_hash=payload.manifest_hash, request=request)
    return _out(deployment_id)


@router.post("/deployments/{deployment_id}/reject", response=DeploymentOut)
def reject(request, deployment_id: int, payload: DeploymentRejection):
    _visible_deployment(request, deployment_id)
    actions.reject_deployment(request.user, deployment_id, comment=payload.comment, request=request)
    return _out(deployment_id)


@router.post("/deployments/{deployment_id}/cancel", response=DeploymentOut)
def cancel(request, deployment_id: int, payload: Reason = None):
    _visible_deployment(request, deployment_id)
    actions.cancel_deployment(request.user, deployment_id, reason=(payload.reason if payload else ""), request=request)
    return _out(deployment_id)


@router.post("/deployments/{deployment_id}/rollback", response={202: DeploymentOut})
def rollback(request, deployment_id: int, payload: Reason = None):
    _visible_deployment(request, deployment_id)
    rollback = actions.request_rollback(request.user, deployment_id, reason=(payload.reason if payload else ""),
                                           request=request)
    return Status(202, _out(rollback.pk))
