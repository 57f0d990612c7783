"""API for the approvals inbox (API.md): deployments waiting for the caller's decision."""
from typing import Any

from ninja import Router

from portal.api_auth import require_role

from . import policies
from .queries import visible_deployments
from .serializers import deployment_out

router = Router(tags=["releases and deployments"])


@router.get("/approvals", response=list[dict[str, Any]])
def approvals_inbox(request, limit: int = 100):
    """Deployments waiting for a decision the caller may give, oldest first (at most `limit`, up to 500)."""
    require_role(request)
    pending = policies.decidable(request.user, visible_deployments(request.user)).order_by("requested_at", "id")
    decidable = (d for d in pending if policies.may_decide(request.user, d, approvals=list(d.approvals.all())))
    return [deployment_out(d, with_log=False) for _, d in zip(range(max(1, min(limit, 500))), decidable)]
