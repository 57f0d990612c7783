"""The board: services as rows, environments as columns grouped by tier, one cell per pair.

A handful of queries whatever the size (environments, services, cells, open deployments); the
live updates (portal.live) send only the cells that changed since the version the page holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from deployments.choices import DeploymentState as S
from deployments.models import Deployment, Service
from environments.choices import TIER_ORDER, TIERS
from environments.models import Environment
from portal import live
from portal.accounts import policies as roles

from .models import STATUSES, AutoRollback, CellHealth

OPEN_STATES = [S.PENDING_APPROVAL, S.APPROVED, S.QUEUED, S.RUNNING]
PROBLEMS = ("degraded", "down", "unknown")


@dataclass
class Filters:
    team: str = ""
    tier: str = ""
    status: str = ""
    problems: bool = False

    @classmethod
    def from_request(cls, request):
        tier = request.GET.get("tier", "")
        status = request.GET.get("status", "")
        return cls(team=request.GET.get("team", "")[:100], tier=tier if tier in TIERS else "",
                   status=status if status in STATUSES else "", problems=request.GET.get("problems") == "1")

    def query(self):
        parts = {"team": self.team, "tier": self.tier, "status": self.status, "problems": "1" if self.problems else ""}
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in parts.items() if v})

    @property
    def active(self):
        return bool(self.team or self.tier or self.status or self.problems)


def environments_for(user, filters, visible=None):
    """The board's columns: the environments the user may see (``visible`` when the caller has them), by tier."""
    if visible is None:
        visible = roles.restrict_environments(user, Environment.objects.only("id", "slug", "name", "tier", "team"))
    return sorted((e for e in visible if not filters.tier or e.tier == filters.tier),
                  key=lambda e: (TIER_ORDER.get(e.tier, 99), e.name))


def _cells(environments, since=None):
    qs = (CellHealth.objects.filter(environment_id__in=[e.pk for e in environments])
          .select_related("deployment__release")
          .only("id", "environment_id", "service_id", "status", "reason", "since", "checked_at", "color", "changed_at",
                "latency_ms", "deployment_id", "deployment__kind", "deployment__rollback_of_id", "deployment__release__version"))
    if since is not None:
        qs = qs.filter(changed_at__gt=since)
    return {(c.environment_id, c.service_id): c for c in qs}


def _open_deployments(environments, since=None):
    qs = Deployment.objects.filter(environment_id__in=[e.pk for e in environments], state__in=OPEN_STATES)
    if since is not None:
        qs = qs.filter(updated_at__gt=since)
    marks = {}
    for pk, env_id, service_id, state in qs.order_by("requested_at").values_list("pk", "environment_id", "service_id", "state"):
        marks.setdefault((env_id, service_id), (pk, state))
    return marks


def _auto(cells):
    rollbacks = [c.deployment_id for c in cells.values() if c.deployment_id and c.deployment.kind == "rollback"]
    if not rollbacks:
        return set()
    return set(AutoRollback.objects.filter(rollback_id__in=rollbacks).values_list("rollback_id", flat=True))


def build(user, filters, environments=None, services=None):
    """Everything the board template needs, in a constant number of queries."""
    environments = environments_for(user, filters) if environments is None else environments
    every_service = list(Service.objects.only("id", "name", "team").order_by("name") if services is None else services)
    services = [s for s in every_service if not filters.team or s.team == filters.team]
    cells = _cells(environments)
    marks = _open_deployments(environments)
    auto = _auto(cells)
    rows = []
    for service in services:
        row = []
        for env in environments:
            key = (env.pk, service.pk)
            row.append(Cell(env, service, cells.get(key), marks.get(key), auto))
        if filters.status and not any(c.status == filters.status for c in row):
            continue
        if filters.problems and not any(c.status in PROBLEMS for c in row if c.health):
            continue
        if any(c.health or c.mark for c in row):  # a service deployed nowhere visible has no row
            rows.append((service, row))
    groups = []
    for env in environments:
        if groups and groups[-1][0] == env.tier:
            groups[-1][1].append(env)
        else:
            groups.append((env.tier, [env]))
    return {"environments": environments, "rows": rows, "groups": groups, "filters": filters,
            "teams": sorted({s.team for s in every_service if s.team}),
            "tiers": sorted(TIERS, key=TIER_ORDER.get), "statuses": STATUSES}


class Cell:
    def __init__(self, env, service, health, mark, auto):
        self.env, self.service, self.health, self.mark = env, service, health, mark
        self.dom_id = f"cell-{env.pk}-{service.pk}"
        self.status = health.status if health else ("" if mark is None else "pending")
        self.rolled_back = bool(health and health.deployment_id and health.deployment.kind == "rollback")
        self.auto = bool(health and health.deployment_id in auto)


def changed_cells(user, filters, since):
    """The cells whose health or open-deployment mark changed after ``since`` (for an update poll)."""
    environments = environments_for(user, filters)
    changed = set(_cells(environments, since)) | {(e, s) for e, s in _changed_marks(environments, since)}
    if not changed:
        return []
    envs = {e.pk: e for e in environments}
    services = {s.pk: s for s in Service.objects.filter(pk__in={s for _, s in changed}).only("id", "name", "team")}
    cells = _cells(environments)
    marks = _open_deployments(environments)
    auto = _auto(cells)
    return [Cell(envs[e], services[s], cells.get((e, s)), marks.get((e, s)), auto) for e, s in sorted(changed)
            if e in envs and s in services]


def _changed_marks(environments, since):
    return (Deployment.objects.filter(environment_id__in=[e.pk for e in environments], updated_at__gt=since)
            .values_list("environment_id", "service_id").distinct())


def version(environments, filters):
    """(version parts, latest change) of what the board shows, from two aggregates: a cell redrawn or a
    deployment moving changes it; later polls send only the cells changed after the latest change."""
    ids = [e.pk for e in environments]
    cells = live.state_of(CellHealth.objects.filter(environment_id__in=ids), "changed_at")
    deployments = live.state_of(Deployment.objects.filter(environment_id__in=ids), "updated_at")
    stamps = [datetime.fromisoformat(v) for v in (cells[1], deployments[1]) if v]
    return (filters.query(), cells, deployments), (max(stamps) if stamps else timezone.now())


def parse_since(text):
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return value if timezone.is_aware(value) else None
