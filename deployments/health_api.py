"""API for the live health of what runs in an environment (API.md).

The rows are the board's cells, written by the probe (deployments.monitoring.probing), which
reads replicas and readiness once per cycle; ``refresh=true`` probes the environment now.
"""
from ninja import Router

from environments.queries import visible_environment
from portal.schema_types import Out, Timestamp

from .monitoring.models import CellHealth
from .monitoring.probing import probe_environments

router = Router(tags=["releases and deployments"])


class ServiceHealthOut(Out):
    service: str
    status: str
    ready_replicas: int
    desired_replicas: int
    live_color: str | None
    detail: str | None
    checked_at: Timestamp


@router.get("/environments/{slug}/health", response=list[ServiceHealthOut])
def environment_health(request, slug: str, refresh: bool = False):
    """What runs in the environment and whether it is healthy (probed every 15 s; `refresh=true` probes now)."""
    environment = visible_environment(request.user, slug)
    if refresh:
        probe_environments([environment.pk])
    rows = CellHealth.objects.filter(environment=environment).select_related("service").order_by("service__name")
    return [{"service": row.service.name, "status": row.status, "ready_replicas": row.ready_replicas,
             "desired_replicas": row.desired_replicas, "live_color": row.color or None,
             "detail": row.reason or None, "checked_at": row.checked_at.isoformat()} for row in rows]
