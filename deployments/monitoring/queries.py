"""Reading live health: cells for the board and the API, history and availability of one cell."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone
from pydantic import Field

from deployments.choices import DeploymentState as S
from deployments.models import Deployment, Service
from environments.queries import visible_environment
from portal.accounts import policies as roles
from portal.errors import NotFound
from portal.schema_types import OptionalTimestamp, Out, Timestamp, iso

from .models import CellHealth, HealthChange, HealthCheck, HealthMinute

# One cell as the API gives it, read as a tuple (5,000 cells as model instances with three related
# objects each cost more than everything else in the answer).
CELL_OUT_FIELDS = ("environment__slug", "service__name", "deployment__release__version", "deployment_id", "color", "status",
                   "reason", "since", "checked_at", "latency_ms", "ready_replicas", "desired_replicas")


def visible_environment_and_service(user, slug, name):
    """The environment `slug` (if `user` may see it) and the catalog service `name` of one cell; NotFound otherwise."""
    env = visible_environment(user, slug)
    service = Service.objects.filter(name=name).first()
    if service is None:
        raise NotFound(f"no service '{name}'")
    return env, service


def visible_cells(user, environment=None, service=None, status=None):
    """The cells ``user`` may see, as ``CELL_OUT_FIELDS`` tuples for ``cell_out``, by service then environment."""
    qs = roles.restrict_environments_of(user, CellHealth.objects.all())
    if environment:
        qs = qs.filter(environment__slug=environment)
    if service:
        qs = qs.filter(service__name=service)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("service__name", "environment__slug").values_list(*CELL_OUT_FIELDS)


class HealthCellOut(Out):
    """`cell_out(cell)`: one (environment, service) on the board."""

    environment: str
    service: str
    release: str | None
    deployment: int | None
    color: str | None
    status: str
    reason: str
    since: Timestamp
    checked_at: Timestamp
    latency_ms: int | None
    ready_replicas: int
    desired_replicas: int


def cell_out(row):
    """One cell of ``visible_cells`` for the API."""
    env, service, release, deployment, color, status, reason, since, checked_at, latency, ready, desired = row
    return {
        "environment": env,
        "service": service,
        "release": release if deployment else None,
        "deployment": deployment,
        "color": color or None,
        "status": status,
        "reason": reason,
        "since": iso(since),
        "checked_at": iso(checked_at),
        "latency_ms": latency,
        "ready_replicas": ready,
        "desired_replicas": desired,
    }


def availability(environment_id, service_id, now=None):
    """{"24h": %, "7d": %} from the per-minute aggregates (None where nothing was probed)."""
    now = now or timezone.now()
    result = {}
    for label, span in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7))):
        sums = HealthMinute.objects.filter(environment_id=environment_id, service_id=service_id,
                                           minute__gte=now - span).aggregate(checks=Sum("checks"), failures=Sum("failures"))
        checks = sums["checks"] or 0
        result[label] = round(100.0 * (checks - (sums["failures"] or 0)) / checks, 3) if checks else None
    return result


class HealthCheckPointOut(Out):
    at: Timestamp
    status: str
    latency_ms: int | None


class HealthChangeOut(Out):
    at: Timestamp
    from_status: str = Field(alias="from")
    to: str
    reason: str


class AvailabilityOut(Out):
    """Percent of good probes (null where nothing was probed)."""

    last_24h: float | None = Field(alias="24h")
    last_7d: float | None = Field(alias="7d")


class HealthHistoryOut(Out):
    """`history(...)`; serialize it by alias (`from`, `24h`, `7d`)."""

    checks: list[HealthCheckPointOut]
    changes: list[HealthChangeOut]
    availability: AvailabilityOut


def history(environment_id, service_id, hours=24, now=None):
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    if hours <= 48:
        checks = [{"at": iso(at), "status": status, "latency_ms": latency} for at, status, latency in
                  HealthCheck.objects.filter(environment_id=environment_id, service_id=service_id, at__gte=since)
                  .order_by("at").values_list("at", "status", "latency_ms")[:20000]]
    else:  # raw checks are kept 48 h: older hours come from the minute aggregates
        checks = [{"at": iso(minute), "status": worst, "latency_ms": (total // count) if count else None} for minute, worst, total, count in
                  HealthMinute.objects.filter(environment_id=environment_id, service_id=service_id, minute__gte=since)
                  .order_by("minute").values_list("minute", "worst", "latency_ms_sum", "checks")[:50000]]
    changes = [{"at": iso(c.at), "from": c.from_status, "to": c.to_status, "reason": c.reason} for c in
               HealthChange.objects.filter(environment_id=environment_id, service_id=service_id, at__gte=since).order_by("-at")[:500]]
    return {"checks": checks, "changes": changes, "availability": availability(environment_id, service_id, now)}


Number = int | float


class VerificationRuleOut(Out):
    """A rule of a running or finished verification, with its last value and state."""

    name: str | None
    query: str | None
    op: str | None
    threshold: Number | None
    for_seconds: int | None
    value: Number | None
    state: str | None
    since: OptionalTimestamp
    detail: str | None


class VerificationOut(Out):
    """`verification_out(verification)`: a deployment's verification window."""

    state: str
    reason: str | None
    finished_at: OptionalTimestamp
    started_at: OptionalTimestamp
    ends_at: OptionalTimestamp
    probes: int
    consecutive_failures: int
    failure_threshold: int | None
    last_probe: str | None
    rules: list[VerificationRuleOut]


class AutoRollbackOut(Out):
    outcome: str
    reason: str
    rollback: int | None
    at: OptionalTimestamp


def verification_out(verification):
    if verification is None:
        return None
    return {"state": verification.state, "reason": verification.reason or None, "finished_at": iso(verification.finished_at),
            "started_at": iso(verification.started_at), "ends_at": iso(verification.ends_at), "probes": verification.probes,
            "consecutive_failures": verification.consecutive_failures,
            "failure_threshold": (verification.settings_snapshot or {}).get("failure_threshold"),
            "last_probe": verification.last_probe or None,
            "rules": [{k: r.get(k) for k in ("name", "query", "op", "threshold", "for_seconds", "value", "state", "since", "detail")}
                      for r in verification.rules]}


def deployment_fields(deployment):
    """The health fields of a deployment in the API: verification, rolled_back_by, auto (and why)."""

    # one query: the deployment's verification, its automatic rollback and the one that started it (reverse
    # one-to-ones, joined) and its newest live rollback
    newest_rollback = (Deployment.objects.filter(rollback_of_id=OuterRef("pk"))
                       .exclude(state__in=[S.FAILED, S.CANCELLED, S.REJECTED]).order_by("-pk").values("pk")[:1])
    anchor = (Deployment.objects.filter(pk=deployment.pk)
              .select_related("verification", "auto_rollback", "auto_rollback_of")
              .only("id", "verification", "auto_rollback", "auto_rollback_of")
              .annotate(newest_rollback=Subquery(newest_rollback)).first())
    verification = getattr(anchor, "verification", None)
    rolled_back_by = anchor.newest_rollback if anchor else None
    started = getattr(anchor, "auto_rollback_of", None) is not None  # Gantry started this rollback
    of_this = getattr(anchor, "auto_rollback", None)  # this one was rolled back by Gantry (or it tried)
    auto = started or (of_this is not None and of_this.outcome == "started" and of_this.rollback_id == rolled_back_by)
    return {"verification": verification_out(verification), "rolled_back_by": rolled_back_by, "auto": auto,
            "auto_rollback": ({"outcome": of_this.outcome, "reason": of_this.reason, "rollback": of_this.rollback_id,
                               "at": iso(of_this.at)} if of_this else None)}
