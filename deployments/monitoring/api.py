"""API of live health (API.md, second table): the cells, one cell's history."""
from ninja import Router

from portal.api_auth import require_role
from portal.errors import InvalidInput

from . import queries
from .models import STATUSES

router = Router(tags=["health"])


@router.get("/health", response=list[queries.HealthCellOut])
def list_health(request, environment: str | None = None, service: str | None = None, status: str | None = None):
    """Every (environment, service) cell the caller may see, with its status and reason."""
    require_role(request)
    if status and status not in STATUSES:
        raise InvalidInput(f"status: one of {', '.join(STATUSES)}")
    return [queries.cell_out(c) for c in queries.visible_cells(request.user, environment, service, status)]


@router.get("/environments/{slug}/services/{service}/health/history", response=queries.HealthHistoryOut, by_alias=True)
def health_history(request, slug: str, service: str, hours: int = 24):
    require_role(request)
    if not 1 <= hours <= 24 * 30:
        raise InvalidInput("hours: a whole number from 1 to 720 (30 days)")
    env, svc = queries.visible_environment_and_service(request.user, slug, service)
    return queries.history(env.pk, svc.pk, hours)
