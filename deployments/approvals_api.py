"""API for the approvals inbox (API.md): what waits for the caller's decision.

Deployments (their `kind` is `deploy` or `rollback`, as everywhere), environment requests (`kind`
`environment`) and production restores (`kind` `restore`), oldest first. Each list is narrowed by its
own rule (deployments.policies.decidable, environments.approvals.pending_for,
restore_approvals.pending_restores_for); this module only merges them.
"""
from typing import Annotated, Literal

from ninja import Router
from pydantic import Field

from environments.approvals import pending_for, requester_id
from environments.backups.serializers import RestoreRequestOut, restore_out
from environments.serializers import EnvironmentRequestOut, environment_out
from portal.api_auth import require_role
from portal.schema_types import iso
from portal.validation import list_limit

from .queries import approval_inbox, decidable_rows
from .restore_approvals import pending_restores_for
from .serializers import DeploymentSummaryOut, deployment_out

router = Router(tags=["releases and deployments"])


def _since(env):
    return env.created_at if env.pending_purpose == "create" else env.deletion_requested_at


def environment_request_out(env):
    """An environment request waiting for a decision (pending_for's row)."""
    requester = env.owner if env.pending_purpose == "create" else env.deletion_requested_by
    return environment_out(env, with_rules=False) | {
        "kind": "environment",
        "environment": env.slug,
        "purpose": env.pending_purpose,
        "requested_by": requester.get_username() if requester_id(env, env.pending_purpose) else None,
        "requested_at": iso(_since(env)),
        "approvals_required": env.approvals_required,
        "approvals_valid": env.approvals_valid,
    }


def restore_request_out(restore):
    """A production restore waiting for a decision: what is restored (backup, its size and time) and where."""
    backup = restore.backup
    return restore_out(restore) | {
        "kind": "restore",
        "environment": backup.target.environment.slug,
        "target": backup.target.name,
        "source": backup.target.dsn_display,
        "backup_size_bytes": backup.size_bytes,
        "backup_taken_at": iso(backup.finished_at),
        "backup_sha256": backup.sha256 or None,
        "requested_at": iso(restore.created_at),
        "approvals_required": restore.approvals_required,
        "approvals_valid": restore.approvals_valid,
    }


class DeploymentRequestOut(DeploymentSummaryOut):
    """A deployment in the approvals inbox (`kind` `deploy` or `rollback`)."""

    kind: Literal["deploy", "rollback"]


InboxItem = Annotated[DeploymentRequestOut | EnvironmentRequestOut | RestoreRequestOut, Field(discriminator="kind")]


@router.get("/approvals", response=list[InboxItem])
def approvals_inbox(request, limit: int = 100):
    """What waits for a decision the caller may give, oldest first (at most `limit`, up to 500):
    deployments (`kind` `deploy`/`rollback`), environment requests (`environment`), restores (`restore`)."""
    require_role(request)
    limit = list_limit(limit)
    page = approval_inbox(request.user)[:limit]  # paginated in SQL
    waiting = [(d.requested_at, deployment_out(d, with_log=False)) for d in decidable_rows(request.user, page)]
    waiting += [(_since(env), environment_request_out(env)) for env in pending_for(request.user)]
    waiting += [(r.created_at, restore_request_out(r)) for r in pending_restores_for(request.user)]
    waiting.sort(key=lambda pair: pair[0])  # stable: each list is already oldest first
    return [item for _, item in waiting[:limit]]
