"""The board: services as rows, environments as columns grouped by tier, one cell per pair.

A constant number of queries whatever the size (environments, services, cells, open deployments):
the columns, every cell of those columns (one ``values_list``: tuples, no model instances), the open
deployments, the automatic rollbacks among the cells' deployments. The cells are written as HTML by
``board_html`` (one function, no template per cell: 5,000 cells must render in milliseconds).

Live updates (``portal.live``): a poll's version is two aggregates over the columns (cells: count,
latest change, sum of their versions; deployments: count, latest update) and the column ids, so an
unchanged board answers 304 without loading a cell. A changed board sends the cells changed since the
page's last poll, or the whole grid when its *shape* (its columns and rows) changed: a new
environment, a service deployed for the first time, a row a filter now shows or hides.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Count, Max, Sum
from django.utils import timezone

from deployments.choices import DeploymentState as S
from deployments.models import Deployment, Service
from environments.choices import TIER_ORDER, TIERS
from environments.models import Environment
from portal import live
from portal.accounts import policies as roles
from portal.db_functions import Epoch

from .models import STATUSES, AutoRollback, CellHealth

OPEN_STATES = [S.PENDING_APPROVAL, S.APPROVED, S.QUEUED, S.RUNNING]
PROBLEMS = ("degraded", "down", "unknown")
HIDDEN_ENVIRONMENTS = ("deleted", "rejected")  # environments the dashboard and the board do not show
# Rows are committed a little after the time they carry (changed_at, updated_at are set before COMMIT):
# an update poll re-reads that much before the page's latest change, so a late commit is not missed.
COMMIT_MARGIN = timedelta(seconds=10)


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

        return urlencode({k: v for k, v in parts.items() if v})

    @property
    def active(self):
        return bool(self.team or self.tier or self.status or self.problems)


def _shown(user, queryset):
    """The one rule for the environments the dashboard and the board show to ``user``."""
    return roles.restrict_environments(user, queryset).exclude(status__in=HIDDEN_ENVIRONMENTS)


def shown_environments(user, queryset=None):
    """The environments the dashboard and the board show to ``user``, by name."""
    if queryset is None:
        queryset = Environment.objects.only("id", "slug", "name", "tier", "team", "status")
    return list(_shown(user, queryset).order_by("name"))


def environments_for(user, filters, visible=None):
    """The board's columns: the shown environments (``visible`` when the caller has them) of the tier filter, by tier."""
    if visible is None:
        visible = shown_environments(user)
    return sorted((e for e in visible if not filters.tier or e.tier == filters.tier),
                  key=lambda e: (TIER_ORDER.get(e.tier, 99), e.name))


# A cell's health as read for the board: one tuple per (environment, service).
# ``since`` comes as whole seconds since the epoch: 5,000 timestamps parsed into datetimes cost more than
# the rest of the board (board_html formats them in the user's zone).
CELL_FIELDS = ("environment_id", "service_id", "status", "reason", "since_epoch", "color", "deployment_id", "deployment__kind",
               "deployment__release__version")


def _cells(env_ids):
    """{(environment id, service id): cell tuple (CELL_FIELDS)} of the columns."""
    qs = CellHealth.objects.filter(environment_id__in=env_ids).annotate(since_epoch=Epoch("since")).values_list(*CELL_FIELDS)
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:  # the driver's tuples as they are: no per-row converters for 5,000 rows
        cursor.execute(sql, params)
        return {(row[0], row[1]): row for row in cursor.fetchall()}


def _open_deployments(env_ids):
    """{(environment id, service id): (deployment id, state)} of the oldest open deployment of each pair."""
    marks = {}
    for pk, env_id, service_id, state in (Deployment.objects.filter(environment_id__in=env_ids, state__in=OPEN_STATES)
                                          .order_by("requested_at", "pk")
                                          .values_list("pk", "environment_id", "service_id", "state")):
        marks.setdefault((env_id, service_id), (pk, state))
    return marks


def _auto(cells):
    """The ids of the cells' rollback deployments that Gantry started by itself."""
    rollbacks = [c[6] for c in cells.values() if c[6] and c[7] == "rollback"]
    if not rollbacks:
        return set()
    return set(AutoRollback.objects.filter(rollback_id__in=rollbacks).values_list("rollback_id", flat=True))


def _row_service_ids(env_ids, cells, marks, filters):
    """The services that get a row: deployed (a cell) or being deployed (an open mark) in a column, and
    matching the status / "only problems" filters in at least one column."""
    ids = set()
    for key, health in cells.items():
        if filters.status and health[2] != filters.status or filters.problems and health[2] not in PROBLEMS:
            continue
        ids.add(key[1])
    if not filters.status and not filters.problems:
        ids.update(key[1] for key in marks)
    return ids


@dataclass
class Grid:
    """What the board's table shows: columns, rows, and everything a cell needs."""

    environments: list
    services: list  # the rows, by name
    cells: dict
    marks: dict
    auto: set

    @property
    def shape(self):
        return live.version(tuple(e.pk for e in self.environments), tuple(s.pk for s in self.services))

    @property
    def groups(self):
        groups = []
        for env in self.environments:
            if groups and groups[-1][0] == env.tier:
                groups[-1][1].append(env)
            else:
                groups.append((env.tier, [env]))
        return groups


def grid(environments, filters, services=None):
    """The board's grid in four queries at most (cells, open deployments, row services, automatic rollbacks).

    ``services``: the whole catalog when the caller has it (the dashboard), saving the row query."""
    env_ids = [e.pk for e in environments]
    cells = _cells(env_ids) if env_ids else {}
    marks = _open_deployments(env_ids) if env_ids else {}
    row_ids = _row_service_ids(env_ids, cells, marks, filters)
    if services is None:
        services = Service.objects.filter(pk__in=row_ids).only("id", "name", "team").order_by("name") if row_ids else []
    rows = [s for s in services if s.pk in row_ids and (not filters.team or s.team == filters.team)]
    return Grid(environments, rows, cells, marks, _auto(cells))


def build(user, filters, environments=None, services=None, made=None):
    """Everything the board template needs, in a constant number of queries. ``made(environments, filters,
    catalog)``: what makes the grid (``grid`` by default; the page passes one that reuses a grid it made)."""
    environments = environments_for(user, filters) if environments is None else environments
    catalog = list(Service.objects.only("id", "name", "team").order_by("name")) if services is None else list(services)
    board = (made or grid)(environments, filters, catalog)
    return {"environments": environments, "grid": board, "rows": board.services, "groups": board.groups, "filters": filters,
            "teams": sorted({s.team for s in catalog if s.team}), "tiers": sorted(TIERS, key=TIER_ORDER.get),
            "statuses": STATUSES}


def changed_keys(board, since):
    """The cells of ``board`` whose health or open-deployment mark may have changed after ``since``."""
    since = since - COMMIT_MARGIN
    env_ids = [e.pk for e in board.environments]
    keys = set(CellHealth.objects.filter(environment_id__in=env_ids, changed_at__gt=since).values_list("environment_id", "service_id"))
    keys.update(Deployment.objects.filter(environment_id__in=env_ids, updated_at__gt=since)
                .values_list("environment_id", "service_id").distinct())
    rows = {s.pk for s in board.services}
    return sorted(key for key in keys if key[1] in rows)


def version(user, filters):
    """(version parts, latest change) of what the board shows ``user``, in one query: the columns' ids and two
    aggregates over them. A cell redrawn (its version bumped, even when committed late), an open deployment
    moving (the marks: open deployments only, a few rows by the state index however long the history; one
    leaving the open states lowers the count), a column added or removed change it; later polls send only
    what changed after the latest change. Nothing is rendered or loaded row by row: this is a 304's cost."""
    columns = _shown(user, Environment.objects.all())
    if filters.tier:
        columns = columns.filter(tier=filters.tier)
    if connection.vendor != "postgresql":
        return _version_elsewhere(columns, filters)
    columns_sql, params = columns.order_by().values("pk").query.sql_with_params()
    # B608: what is formatted in is the ORM's own SQL (values stay %s parameters) and two table names
    sql = (f"WITH columns(id) AS ({columns_sql}) "  # nosec B608
           "SELECT (SELECT array_agg(id ORDER BY id) FROM columns), c.n, c.changed, c.versions, d.n, d.updated FROM "
           f"(SELECT count(*) AS n, max(changed_at) AS changed, sum(version) AS versions FROM {CellHealth._meta.db_table} "
           "WHERE environment_id IN (SELECT id FROM columns)) AS c, "
           f"(SELECT count(*) AS n, max(updated_at) AS updated FROM {Deployment._meta.db_table} "
           "WHERE environment_id IN (SELECT id FROM columns) AND state = ANY(%s)) AS d")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, [str(state) for state in OPEN_STATES]])
        ids, cells, changed, versions, open_count, updated = cursor.fetchone()
    return _version_parts(filters, ids, cells, changed, versions, open_count, updated)


def _version_parts(filters, ids, cells, changed, versions, open_count, updated):
    parts = (filters.query(), tuple(ids or ()), (cells, changed and changed.isoformat(), int(versions or 0)),
             (open_count, updated and updated.isoformat()))
    stamps = [v for v in (changed, updated) if v]
    return parts, (max(stamps) if stamps else timezone.now())


def _version_elsewhere(columns, filters):
    """`version` on a database without arrays (the demo's SQLite): the same parts, in three queries."""
    ids = sorted(columns.values_list("pk", flat=True))
    cells = CellHealth.objects.filter(environment_id__in=ids).aggregate(n=Count("pk"), changed=Max("changed_at"),
                                                                        versions=Sum("version"))
    open_ = Deployment.objects.filter(environment_id__in=ids, state__in=OPEN_STATES).aggregate(
        n=Count("pk"), updated=Max("updated_at"))
    return _version_parts(filters, ids, cells["n"], cells["changed"], cells["versions"], open_["n"], open_["updated"])


def parse_since(text):
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return value if timezone.is_aware(value) else None
