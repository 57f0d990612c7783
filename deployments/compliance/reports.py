"""The reports an auditor asks for, computed in SQL: a fixed number of queries whatever the size.

Separation of duties looks at production deployments (or one environment's) in a period; the
access review rebuilds who held which role where at a past moment from the role grant and revoke
events of the audit log, so it answers for dates before today's role table.
"""

from django.db.models import Exists, F, OuterRef, Q, Value, Window
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from deployments.choices import DEPLOY
from deployments.choices import DeploymentState as S
from deployments.models import Approval, Deployment
from environments.models import Environment
from portal.audit import queries as audit_rule
from portal.audit.models import AuditEvent
from portal import validation
from portal.errors import InvalidInput

from .schemas import Period

STARTED = [S.RUNNING, S.SUCCEEDED, S.FAILED, S.ROLLED_BACK]
DEPLOYMENT = "deployments.deployment"


def require_auditor(user):
    """The reports (and the page that builds a period's evidence) are for auditors (portal.audit.queries' rule)."""
    audit_rule.require_auditor(user, needs="reports need")


def parse_moment(name, text, default=None, end_of_day=False):
    """An ISO 8601 time with a zone, or a date (its start, or with end_of_day the next day's start, UTC)."""
    return validation.parse_moment(name, text, error=InvalidInput, default=default, end_of_day=end_of_day)


def _period(params):
    period = Period.validated({"since": params.get("since") or None, "until": params.get("until") or None})
    return period.get("since"), period.get("until")


def _environments(params):
    """Production environments, or the one the filter names."""
    slug = (params.get("environment") or "").strip()
    if slug:
        if not Environment.objects.filter(slug=slug).exists():
            raise InvalidInput(f"environment: no environment '{slug}'")
        return Q(environment__slug=slug), slug
    return Q(environment__tier="production"), "production"


# ---------------------------------------------------------------- separation of duties

def separation_of_duties(params):
    """Four lists of findings; 6 queries however many deployments the period holds."""
    since, until = _period(params)
    where, scope = _environments(params)
    in_period = where
    if since:
        in_period &= Q(requested_at__gte=since)
    if until:
        in_period &= Q(requested_at__lt=until)
    base = Deployment.objects.filter(in_period).select_related("release__service", "environment", "requested_by",
                                                                "release__created_by")

    independent = Approval.objects.filter(
        deployment=OuterRef("pk"), decision="approve", manifest_hash=OuterRef("manifest_hash"),
        image=OuterRef("image"),
    ).exclude(user_id=Coalesce(OuterRef("requested_by_id"), Value(0))).exclude(
        user_id=Coalesce(OuterRef("release__created_by_id"), Value(0)))
    unapproved = list(base.filter(kind=DEPLOY, state__in=STARTED).annotate(independent=Exists(independent))
                      .filter(independent=False).order_by("requested_at", "id"))

    self_approvals = list(Approval.objects.filter(decision="approve", deployment__in=base)
                          .filter(user_id=F("deployment__requested_by_id"))
                          .select_related("deployment__release__service", "deployment__environment", "deployment__requested_by", "user")
                          .order_by("at", "id"))

    break_glass = list(base.filter(break_glass=True).order_by("requested_at", "id"))
    approvers = {}
    for deployment_id, username in (Approval.objects.filter(deployment__in=[d.pk for d in break_glass], decision="approve")
                                    .order_by("at", "id").values_list("deployment_id", "user__username")):
        approvers.setdefault(deployment_id, []).append(username)

    starts = AuditEvent.objects.filter(target_type=DEPLOYMENT, action__in=["deployment.queued", "deployment.running"]).filter(
        Q(detail__gate__window_open=False) | Q(detail__gate__frozen=True))
    outside_events = {}
    for target_id, seq, at, window_open, frozen, reason in starts.values_list(
            "target_id", "seq", "at", "detail__gate__window_open", "detail__gate__frozen", "detail__gate__freeze_reason"):
        outside_events.setdefault(target_id, (seq, at, window_open, frozen, reason))
    outside = list(base.filter(pk__in=[int(pk) for pk in outside_events if pk.isdigit()]).order_by("requested_at", "id"))

    def row(d, **extra):
        return {"deployment": d.pk, "service": d.release.service.name, "version": d.release.version,
                "environment": d.environment.slug, "state": d.state, "kind": d.kind,
                "requested_by": d.requested_by.get_username() if d.requested_by_id else None,
                "requested_at": d.requested_at.isoformat(), "url": f"/deployments/{d.pk}/",
                "evidence": f"/api/v1/deployments/{d.pk}/evidence", **extra}

    return {
        "scope": scope,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "without_independent_approval": [row(d, author=d.release.created_by.get_username() if d.release.created_by_id
                                              else None, break_glass=d.break_glass) for d in unapproved],
        "self_approvals": [row(a.deployment, approver=a.user.get_username(), approved_at=a.at.isoformat())
                           for a in self_approvals],
        "break_glass": [row(d, reason=d.break_glass_reason, approvers=approvers.get(d.pk, [])) for d in break_glass],
        "outside_windows_or_freezes": [
            row(d, window_open=outside_events[str(d.pk)][2], frozen=outside_events[str(d.pk)][3],
                freeze_reason=outside_events[str(d.pk)][4] or "", break_glass=d.break_glass,
                event=outside_events[str(d.pk)][0], started_at=outside_events[str(d.pk)][1].isoformat())
            for d in outside],
    }


SOD_SECTIONS = (
    ("without_independent_approval", "Reached production without an approver other than the requester and the author"),
    ("self_approvals", "Self-approvals (where the environment allowed them)"),
    ("break_glass", "Break-glass overrides"),
    ("outside_windows_or_freezes", "Started outside a deployment window or during a freeze"),
)


def sod_csv_rows(report):
    yield ["finding", "deployment", "service", "version", "environment", "state", "requested_by", "requested_at",
           "detail", "url"]
    for key, _ in SOD_SECTIONS:
        for r in report[key]:
            if key == "without_independent_approval":
                detail = f"author {r['author'] or '-'}" + ("; break-glass" if r["break_glass"] else "")
            elif key == "self_approvals":
                detail = f"approved by {r['approver']} at {r['approved_at']}"
            elif key == "break_glass":
                detail = f"reason: {r['reason']}; approvers: {', '.join(r['approvers']) or '-'}"
            else:
                detail = ("window closed" if r["window_open"] is False else "window open") + (
                    f"; frozen: {r['freeze_reason']}" if r["frozen"] else "") + ("; break-glass" if r["break_glass"] else "")
            yield [key, r["deployment"], r["service"], r["version"], r["environment"], r["state"], r["requested_by"],
                   r["requested_at"], detail, r["url"]]


# ---------------------------------------------------------------- access review

ROLE_ACTIONS = ("role.grant", "role.revoke")


def _role_events():
    return (AuditEvent.objects.filter(action__in=ROLE_ACTIONS, outcome="success")
            .annotate(role=Coalesce(KT("changes__role__1"), KT("changes__role__0"))))


def access_review(params):
    """Who held which role where at `at` (default now), who granted it and when; and the grants and
    revokes between `since` and `until` when given. Two queries."""
    at = parse_moment("at", params.get("at"), default=timezone.now())
    since, until = _period(params)
    latest = (_role_events().filter(at__lte=at)
              .annotate(rank=Window(RowNumber(), partition_by=[F("target_id"), F("environment"), F("role")],
                                    order_by=F("seq").desc()))
              .filter(rank=1)  # the action is checked after the window: a filter here would apply before it
              .order_by("target_repr", "environment", "role"))
    latest = [e for e in latest if e.action == "role.grant"]
    held = [{"user": e.target_repr, "user_id": int(e.target_id) if e.target_id.isdigit() else None, "role": e.role,
             "scope": e.environment or "global", "granted_by": e.actor, "granted_at": e.at.isoformat(),
             "event": e.seq, "event_hash": e.hash} for e in latest]
    changes = []
    if since or until:
        period = _role_events()
        if since:
            period = period.filter(at__gte=since)
        if until:
            period = period.filter(at__lt=until)
        changes = [{"at": e.at.isoformat(), "action": e.action.split(".")[1], "user": e.target_repr, "role": e.role,
                    "scope": e.environment or "global", "by": e.actor, "event": e.seq}
                   for e in period.order_by("seq")]
    return {"at": at.isoformat(), "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "held": held, "changes": changes}


def access_csv_rows(report):
    yield ["section", "user", "role", "scope", "granted_or_changed_by", "at", "action", "audit_event"]
    for r in report["held"]:
        yield ["held", r["user"], r["role"], r["scope"], r["granted_by"], r["granted_at"], "grant", r["event"]]
    for r in report["changes"]:
        yield ["change", r["user"], r["role"], r["scope"], r["by"], r["at"], r["action"], r["event"]]
