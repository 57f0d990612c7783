"""API for environments (API.md): list, create, fetch, change, delete."""
from typing import Any

from ninja import Router, Status

from deployments.monitoring.config import (
    VerificationSettingsOut,
    clean_verification,
    settings_for,
    update_verification,
    verification_out,
)
from portal.accounts import policies
from portal.api_auth import require_role

from . import lifecycle
from .choices import EnvironmentStatus
from .models import Environment
from .queries import visible_environment
from .schemas import EnvironmentChange, EnvironmentCreate
from .self_service_api import _out
from .serializers import EnvironmentDecisionOut, EnvironmentOut, environment_out

router = Router(tags=["clusters and environments"])


class EnvironmentPatch(EnvironmentChange):
    verification: dict[str, Any] | None = None  # deployments.monitoring's rules, changed with the rest


@router.get("/environments", response=list[EnvironmentOut])
def list_environments(request, tier: str | None = None, status: str | None = None):
    """Live environments; `status=deleted` (or `rejected`) lists those kept for history."""
    require_role(request)
    qs = policies.restrict_environments(request.user, Environment.objects.select_related("cluster", "owner", "promotion_from"))
    if tier:
        qs = qs.filter(tier=tier)
    qs = qs.filter(status=status) if status else qs.exclude(status__in=EnvironmentStatus.GONE)
    return [environment_out(e) for e in qs.order_by("name")]


@router.post("/environments", response={201: EnvironmentOut})
def create_environment(request, payload: EnvironmentCreate):
    env = lifecycle.create_environment(request.user, payload, request=request)
    return Status(201, environment_out(env))


class EnvironmentDetailOut(EnvironmentOut):
    """One environment: its rules and its verification settings."""

    verification: VerificationSettingsOut


def _with_verification(env):
    return environment_out(env) | {"verification": verification_out(settings_for(env))}


@router.get("/environments/{slug}", response=EnvironmentDetailOut)
def get_environment(request, slug: str):
    return _with_verification(visible_environment(request.user, slug))


@router.patch("/environments/{slug}", response=EnvironmentDetailOut)
def update_environment(request, slug: str, payload: EnvironmentPatch):
    env = visible_environment(request.user, slug)
    verification = payload.verification
    if verification is not None and policies.can_edit_environment(request.user, env):
        clean_verification(env, verification)  # refuse bad rules before changing anything else
    if payload.model_fields_set - {"verification"} or verification is None:
        env = lifecycle.update_environment(request.user, env, payload, request=request)
    if verification is not None:
        update_verification(request.user, env, verification, request=request)
    return _with_verification(Environment.objects.select_related("cluster", "owner", "promotion_from").get(pk=env.pk))


@router.delete("/environments/{slug}", response={202: EnvironmentDecisionOut}, exclude_unset=True)
def delete_environment(request, slug: str):
    """202: status `deleting` while a job removes the namespace, later `deleted` (kept for history);
    `deleted` at once without a cluster; for staging and production, the deletion waits for approval
    (`pending_approval: "delete"`)."""

    env = visible_environment(request.user, slug)
    job = lifecycle.delete_environment(request.user, env, request=request)
    return Status(202, _out(env) | ({"job": str(job.pk)} if job is not None else {}))
