"""API for releases, deployments, approvals and rollbacks (API.md)."""
from typing import Any, Optional

from ninja import Router, Schema, Status
from pydantic import ConfigDict

from portal.accounts import policies as roles
from portal.errors import Forbidden, NotFound

from . import policies, promotions
from .models import Deployment, Release
from .serializers import deployment_out, release_out

router = Router(tags=["releases and deployments"])

DEPLOYMENT_RELATED = ("release__service", "release__created_by", "service", "environment", "requested_by", "job")


class ReleaseIn(Schema):
    model_config = ConfigDict(extra="forbid")

    service: str
    version: str
    image: str
    git_sha: Optional[str] = None
    notes: Optional[str] = None


class BreakGlassIn(Schema):
    reason: str


class DeploymentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    release: int
    environment: str
    start_now: Optional[bool] = False
    break_glass: Optional[BreakGlassIn] = None


class DecisionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    comment: Optional[str] = ""
    checklist: Optional[list[str]] = None
    manifest_hash: Optional[str] = None  # the manifests the approver reviewed; 409 if they changed since


class ReasonIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: Optional[str] = ""


def _require_role(request):
    if not roles.has_any_role(request.user):
        raise Forbidden("you have no role in Gantry yet; ask an admin to grant you one")


def visible_deployments(user):
    qs = Deployment.objects.select_related(*DEPLOYMENT_RELATED).prefetch_related("approvals__user")
    return roles.restrict_environments_of(user, qs)


def _visible_deployment(request, deployment_id):
    _require_role(request)
    deployment = visible_deployments(request.user).filter(pk=deployment_id).first()
    if deployment is None:
        raise NotFound(f"no deployment #{deployment_id}")
    return deployment


def _out(deployment_id):
    deployment = (Deployment.objects.select_related(*DEPLOYMENT_RELATED)
                  .prefetch_related("approvals__user", "job__log_lines").get(pk=deployment_id))
    return deployment_out(deployment)


@router.post("/releases", response={201: dict[str, Any]})
def create_release(request, payload: ReleaseIn):
    release = promotions.register_release(request.user, payload.dict(exclude_unset=True), request=request)
    return Status(201, release_out(release))


@router.get("/releases", response=list[dict[str, Any]])
def list_releases(request, service: Optional[str] = None, limit: int = 100):
    _require_role(request)
    qs = Release.objects.select_related("service", "created_by")
    if service:
        qs = qs.filter(service__name=service)
    return [release_out(r) for r in qs[: max(1, min(limit, 500))]]


@router.get("/releases/{release_id}", response=dict[str, Any])
def get_release(request, release_id: int):
    _require_role(request)
    release = Release.objects.select_related("service", "created_by").filter(pk=release_id).first()
    if release is None:
        raise NotFound(f"no release {release_id}")
    return release_out(release)


@router.post("/deployments", response={201: dict[str, Any]})
def create_deployment(request, payload: DeploymentIn):
    data = payload.dict(exclude_unset=True)
    deployment = promotions.request_deployment(request.user, data, request=request)
    return Status(201, _out(deployment.pk))


@router.get("/deployments", response=list[dict[str, Any]])
def list_deployments(request, environment: Optional[str] = None, service: Optional[str] = None,
                     state: Optional[str] = None, limit: int = 100):
    _require_role(request)
    qs = visible_deployments(request.user)
    if environment:
        qs = qs.filter(environment__slug=environment)
    if service:
        qs = qs.filter(service__name=service)
    if state:
        qs = qs.filter(state=state)
    return [deployment_out(d, with_log=False) for d in qs[: max(1, min(limit, 500))]]


@router.get("/approvals", response=list[dict[str, Any]])
def approvals_inbox(request, limit: int = 100):
    """Deployments waiting for a decision the caller may give, oldest first (at most `limit`, up to 500)."""
    _require_role(request)
    pending = policies.decidable(request.user, visible_deployments(request.user)).order_by("requested_at", "id")
    decidable = (d for d in pending if policies.may_decide(request.user, d, approvals=list(d.approvals.all())))
    return [deployment_out(d, with_log=False) for _, d in zip(range(max(1, min(limit, 500))), decidable)]


@router.get("/deployments/{deployment_id}", response=dict[str, Any])
def get_deployment(request, deployment_id: int):
    return _out(_visible_deployment(request, deployment_id).pk)


@router.post("/deployments/{deployment_id}/approve", response=dict[str, Any])
def approve(request, deployment_id: int, payload: DecisionIn = None):
    _visible_deployment(request, deployment_id)
    payload = payload or DecisionIn()
    promotions.approve_deployment(request.user, deployment_id, comment=payload.comment, checklist=payload.checklist,
                                  seen_manifest_hash=payload.manifest_hash, request=request)
    return _out(deployment_id)


@router.post("/deployments/{deployment_id}/reject", response=dict[str, Any])
def reject(request, deployment_id: int, payload: DecisionIn):
    _visible_deployment(request, deployment_id)
    promotions.reject_deployment(request.user, deployment_id, comment=payload.comment, request=request)
    return _out(deployment_id)


@router.post("/deployments/{deployment_id}/cancel", response=dict[str, Any])
def cancel(request, deployment_id: int, payload: ReasonIn = None):
    _visible_deployment(request, deployment_id)
    promotions.cancel_deployment(request.user, deployment_id, reason=(payload.reason if payload else ""), request=request)
    return _out(deployment_id)


@router.post("/deployments/{deployment_id}/rollback", response={202: dict[str, Any]})
def rollback(request, deployment_id: int, payload: ReasonIn = None):
    _visible_deployment(request, deployment_id)
    rollback = promotions.request_rollback(request.user, deployment_id, reason=(payload.reason if payload else ""),
                                           request=request)
    return Status(202, _out(rollback.pk))


@router.get("/environments/{slug}/health", response=list[dict[str, Any]])
def environment_health(request, slug: str, refresh: bool = False):
    """What runs in the environment and whether it is healthy (polled every 30 s; `refresh=true` polls now)."""
    from environments.api import visible_environment

    from .health import poll_environment
    from .models import ServiceHealth

    environment = visible_environment(request, slug)
    if refresh:
        poll_environment(environment)
    rows = ServiceHealth.objects.filter(environment=environment).select_related("service").order_by("service__name")
    return [{"service": row.service.name, "status": row.status, "ready_replicas": row.ready_replicas,
             "desired_replicas": row.desired_replicas, "live_color": row.live_color or None,
             "detail": row.detail or None, "checked_at": row.checked_at.isoformat()} for row in rows]
