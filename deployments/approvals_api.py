"""API for the approvals inbox (API.md): deployments waiting for the caller's decision."""
from typing import Any

from ninja import Router

from portal.api_auth import require_role

from .queries import approval_inbox, decidable_rows
from .serializers import deployment_out

router = Router(tags=["releases and deployments"])


@router.get("/approvals", response=list[dict[str, Any]])
def approvals_inbox(request, limit: int = 100):
    """Deployments waiting for a decision the caller may give, oldest first (at most `limit`, up to 500)."""
    require_role(request)
    page = approval_inbox(request.user)[: max(1, min(limit, 500))]  # paginated in SQL
    return [deployment_out(d, with_log=False) for d in decidable_rows(request.user, page)]
