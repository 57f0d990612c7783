"""What ran and what runs in one environment: its deployment history and the live view with health."""
from django.contrib.auth.decorators import login_required
from django.db.models import F, Prefetch, Window
from django.db.models.functions import RowNumber
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from environments.queries import visible_environment
from portal import live
from portal.pages import needs_role, paginate

from . import policies
from .bluegreen import COLORS
from .choices import APPROVE, BLUE_GREEN
from .choices import DeploymentState as S
from .live import live_and_rollback_targets
from .models import Approval, Deployment, Service
from .monitoring.models import CellHealth


HISTORY_FRAGMENT = "history-table"


@login_required
@needs_role
def environment_history(request, slug):
    """Which release ran when in one environment, who asked, who approved, and how it ended. The table
    is a live fragment (portal/live.py): its version is the rows' count, latest change and latest
    approval (one aggregate), so outcomes show as they happen. The service filter is applied as given."""
    env = visible_environment(request.user, slug)
    service = request.GET.get("service", "").strip()
    approvers = Prefetch("approvals", queryset=Approval.objects.filter(decision=APPROVE).select_related("user"),
                         to_attr="approvers")
    qs = (Deployment.objects.filter(environment=env)
          .select_related("release", "service", "requested_by")
          .prefetch_related(approvers)
          .defer("rendered_manifest", "release__notes", "service__manifest"))
    if service:
        qs = qs.filter(service__name=service)
    parts = live.state_of(qs, "updated_at", "approvals__at")
    poll = live.Poll(request)

    def render_history(tag):
        context = {"section": "environments", "env": env, "service": service, "history_version": tag,
                   "page": paginate(request, qs.order_by("-requested_at", "-id"), count=parts[0])}
        if poll.is_poll:
            return render(request, "deployments/_history_table.html", context)
        context["services"] = list(Service.objects.filter(deployments__environment=env).distinct().only("name")
                                   .order_by("name"))
        return render(request, "deployments/history.html", context)

    if poll.wants(HISTORY_FRAGMENT):
        return poll.respond(parts, render_history)
    return render_history(poll.version_for(parts, HISTORY_FRAGMENT))


def _colors(env, service_ids):
    """{service id: {colour: deployment}}: the last deployment that went to each colour and succeeded
    (it may since have been rolled back: its colour still runs it until scaled down)."""
    if not service_ids:
        return {}
    latest = (Deployment.objects.filter(environment=env, service_id__in=service_ids, color__in=COLORS,
                                        state__in=[S.SUCCEEDED, S.ROLLED_BACK])
              .annotate(rank=Window(RowNumber(), partition_by=[F("service_id"), F("color")],
                                    order_by=[F("finished_at").desc(nulls_last=True), F("id").desc()]))
              .filter(rank=1).select_related("release").only("id", "service_id", "color", "state", "release__version"))
    colors = {}
    for deployment in latest:
        colors.setdefault(deployment.service_id, {})[deployment.color] = deployment
    return colors


def _live_rows(request, env):
    lives = live_and_rollback_targets(env.pk)
    health = {row.service_id: row for row in CellHealth.objects.filter(environment=env)}
    may_roll_back = policies.rollback_refusal(request.user, env) is None
    busy = policies.services_in_flight(env.pk)  # a rollback waits for what is approved or under way
    colors = _colors(env, [sid for sid, (running, _) in lives.items() if running.service.strategy == BLUE_GREEN])
    rows = []
    for running, target in sorted(lives.values(), key=lambda pair: pair[0].service.name):
        rows.append({
            "deployment": running,
            "health": health.get(running.service_id),
            "blue_green": running.service.strategy == BLUE_GREEN,
            "colors": [(color, colors.get(running.service_id, {}).get(color)) for color in COLORS],
            "rollback_to": target if may_roll_back and running.service_id not in busy else None,
        })
    return rows


def live_view_parts(request, env):
    """What the "Running now" fragment shows, as cheap version parts (portal/live.py)."""
    return (env.updated_at.isoformat(), live.state_of(Deployment.objects.filter(environment=env)),
            live.state_of(CellHealth.objects.filter(environment=env), "checked_at"),
            policies.may_request(request.user, env))


@login_required
@needs_role
def environment_live(request, slug):
    """What runs in the environment and whether it is healthy: a live fragment (polled, 304 when unchanged)."""
    env = visible_environment(request.user, slug)
    poll = live.Poll(request)

    def render_live(tag=None):
        context = {
            "section": "environments",
            "env": env,
            "rows": _live_rows(request, env),
            "can_request": policies.may_request(request.user, env),
            "rollback_rules": policies.rollback_rules(env),
            "live_version": tag or poll.version_for(live_view_parts(request, env), "env-live"),
        }
        return render(request, "deployments/_live.html" if poll.is_poll else "deployments/live.html", context)

    if poll.is_poll:
        return poll.respond(live_view_parts(request, env), render_live, fragment_id="env-live")
    response = render_live()
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@needs_role
def environment_pending(request, slug):
    """The environment page's "waiting here" fragment: deployments not finished yet (waiting for approval,
    approved, queued or running), so the page says what is about to change. A live fragment."""
    env = visible_environment(request.user, slug)
    open_states = [*S.OPEN, S.RUNNING]
    waiting = Deployment.objects.filter(environment=env, state__in=open_states)

    def render_pending(tag):
        rows = list(waiting.select_related("release", "service", "requested_by").prefetch_related("approvals")
                    .defer("rendered_manifest", "release__notes", "service__manifest").order_by("requested_at", "id"))
        for deployment in rows:
            deployment.approvals_required = policies.approvals_required(deployment)
            deployment.approvals_valid = len(policies.valid_approvals(deployment,
                                                                      approvals=list(deployment.approvals.all())))
        return render(request, "deployments/_pending.html", {"env": env, "waiting": rows, "pending_version": tag})

    parts = (live.state_of(waiting), live.state_of(Approval.objects.filter(deployment__in=waiting), "at"))
    return live.Poll(request).respond(parts, render_pending, fragment_id="env-pending")
