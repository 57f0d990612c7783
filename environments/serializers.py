"""Plain-dict views of clusters and environments for the API (never a credential)."""
from typing import Any, Literal
from urllib.parse import urlsplit

from portal.schema_types import OptionalTimestamp, Out, Timestamp, iso

from . import policies as rules
from .guardrails import parameter_bounds, ttl_bounds


def masked_url(url):
    """A webhook URL carries its secret in the path: show only where it points."""
    if not url:
        return None

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/***"


def cluster_out(cluster):
    return {
        "id": cluster.pk,
        "name": cluster.name,
        "mode": cluster.mode,
        "server": cluster.server or None,
        "in_cluster": cluster.mode == "in_cluster",
        "kubeconfig_path": cluster.kubeconfig_path or None,
        "context": cluster.context or None,
        "insecure": cluster.insecure,
        "has_credentials": bool(cluster.token_encrypted or cluster.kubeconfig_encrypted),
        "is_sandbox": cluster.is_sandbox,
        "server_version": cluster.server_version or None,
        "last_checked_at": iso(cluster.last_checked_at),
        "last_check_ok": cluster.last_check_ok,
        "last_error": cluster.last_error or None,
        "created_at": iso(cluster.created_at),
    }


def environment_out(env, *, with_rules=True):
    data = {
        "id": env.pk,
        "name": env.name,
        "slug": env.slug,
        "tier": env.tier,
        "status": env.status,
        "cluster": env.cluster.name if env.cluster_id else None,
        "namespace": env.namespace,
        "owner": env.owner.get_username() if env.owner_id else None,
        "team": env.team,
        "description": env.description,
        "template": env.template or None,
        "parameters": env.parameters,
        "quota": (env.guardrails or {}).get("quota") or None,
        "ttl_hours": env.ttl_hours,
        "expires_at": iso(env.expires_at),
        "created_at": iso(env.created_at),
        "updated_at": iso(env.updated_at),
    }
    if with_rules:
        freeze = rules.active_freeze(env)
        data.update({
            "required_approvals": env.required_approvals,
            "prevent_self_approval": env.prevent_self_approval,
            "deployment_windows": env.deployment_windows,
            "window_open": rules.window_open(env.deployment_windows),
            "freeze": {"until": iso(freeze["until"]), "reason": freeze["reason"]} if freeze else None,
            "approver_groups": env.approver_groups,
            "checklist": env.checklist,
            "promotion_from": env.promotion_from.slug if env.promotion_from_id else None,
            "rollback_requires_approval": env.rollback_requires_approval,
            "replicas": env.replicas,
            "blue_green_keep_minutes": env.blue_green_keep_minutes,
            "webhook_url": masked_url(env.webhook_url),
            "notify_emails": env.notify_emails or None,
        })
    return data


def template_out(template):
    return {
        "id": template.pk,
        "name": template.name,
        "description": template.description,
        "tier": template.tier,
        "cluster": template.cluster.name if template.cluster_id else None,
        "quota": template.quota,
        "limit_range": template.limit_range,
        "network_policy": template.network_policy,
        "ingress_namespace": template.ingress_namespace or None,
        "ttl_hours": template.ttl_hours,
        "max_ttl_hours": ttl_bounds(template)[1] if template.ttl_hours or template.max_ttl_hours else None,
        "requires_approval": template.requires_approval,
        "required_approvals": template.required_approvals,
        "parameters": {name: {"min": b["min"], "max": b["max"], "default": b["default"]}
                       for name, b in parameter_bounds(template).items()},
        "services": template.services,
        "created_at": iso(template.created_at),
        "updated_at": iso(template.updated_at),
    }


# ---------------------------------------------------------------- response schemas (the OpenAPI document)
# Each mirrors the dict its function above returns, key for key (portal.schema_types.Out forbids others).

class ClusterOut(Out):
    id: int
    name: str
    mode: str
    server: str | None
    in_cluster: bool
    kubeconfig_path: str | None
    context: str | None
    insecure: bool
    has_credentials: bool
    is_sandbox: bool
    server_version: str | None
    last_checked_at: OptionalTimestamp
    last_check_ok: bool | None
    last_error: str | None
    created_at: Timestamp


class WindowOut(Out):
    """A deployment window as `policies.clean_windows` stores it."""

    days: list[str]
    start: str
    end: str
    timezone: str


class FreezeOut(Out):
    until: OptionalTimestamp
    reason: str


class EnvironmentSummaryOut(Out):
    """`environment_out(env, with_rules=False)`: the environment without its rules."""

    id: int
    name: str
    slug: str
    tier: str
    status: str
    cluster: str | None
    namespace: str
    owner: str | None
    team: str
    description: str
    template: str | None
    parameters: dict[str, Any]
    quota: dict[str, Any] | None
    ttl_hours: int | None
    expires_at: OptionalTimestamp
    created_at: Timestamp
    updated_at: Timestamp


class EnvironmentOut(EnvironmentSummaryOut):
    """`environment_out(env)`: the environment and its rules."""

    required_approvals: int
    prevent_self_approval: bool
    deployment_windows: list[WindowOut]
    window_open: bool
    freeze: FreezeOut | None
    approver_groups: list[str]
    checklist: list[str]
    promotion_from: str | None
    rollback_requires_approval: bool
    replicas: int
    blue_green_keep_minutes: int
    webhook_url: str | None
    notify_emails: str | None


class EnvironmentRequestOut(EnvironmentSummaryOut):
    """An environment request in the approvals inbox (`kind` `environment`)."""

    kind: Literal["environment"]
    environment: str
    purpose: str
    requested_by: str | None
    requested_at: OptionalTimestamp
    approvals_required: int
    approvals_valid: int


class EnvironmentApprovalOut(Out):
    user: str
    purpose: str
    decision: str
    comment: str
    at: Timestamp


class EnvironmentDecisionOut(EnvironmentOut):
    """The environment with its pending approval (self-service decisions and deletion); `job` when one started."""

    pending_approval: str | None
    approvals_required: int | None
    approvals: list[EnvironmentApprovalOut]
    job: str | None = None


Bound = str | int | float | None  # as the admin wrote it in the template


class TemplateParameterOut(Out):
    min: Bound
    max: Bound
    default: str


class TemplateOut(Out):
    id: int
    name: str
    description: str
    tier: str
    cluster: str | None
    quota: dict[str, Any]
    limit_range: dict[str, Any]
    network_policy: str
    ingress_namespace: str | None
    ttl_hours: int | None
    max_ttl_hours: int | None
    requires_approval: bool
    required_approvals: int
    parameters: dict[str, TemplateParameterOut]
    services: list[Any]
    created_at: Timestamp
    updated_at: Timestamp
