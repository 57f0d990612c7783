"""Pages of live health: the board (on the dashboard), its updates, one service in one environment,
and the verification panel of a deployment. They read through queries/board and render."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from deployments.models import Deployment
from portal import live
from portal.accounts import policies as roles
from portal.errors import NotFound
from portal.pages import needs_role

from . import board, charts, queries
from .board_html import CellWriter
from .config import settings_for
from .models import CellHealth, HealthChange, Verification, VerificationSettings
from .policies import source_verification

BOARD_FRAGMENT = "board-updates"
# Where the grid's rows go in a rendered page: the rows (megabytes at 5,000 cells) are put into the response
# once, instead of being copied by every template level they would pass through (see render_board).
BODY_MARK = mark_safe("<!-- gantry:board-rows -->")  # noqa: S308  # nosec B308 B703  # a constant


def render_board(request, template, context, board_context):
    """``render`` for a page holding the board: the template writes BODY_MARK, the rows replace it here."""
    page = render_to_string(template, context, request)
    if BODY_MARK not in page:  # an empty board writes no rows
        return HttpResponse(page)
    head, tail = page.split(BODY_MARK, 1)
    return HttpResponse([head, board_context["body_html"], tail])


def board_context(request, environments=None, services=None):
    """The board's part of the dashboard's context (reusing the dashboard's environments and services)."""
    filters = board.Filters.from_request(request)
    environments = board.environments_for(request.user, filters, environments)
    parts, since = board.version(request.user, filters)
    bodies = {}

    def made(columns, filters, catalog):
        grid, bodies["body"] = _grid_and_body(columns, filters, catalog, parts)
        return grid

    context = board.build(request.user, filters, environments, services, made)
    poll = live.Poll(request)
    context.update(version=poll.version_for(parts, BOARD_FRAGMENT), body=BODY_MARK, body_html=bodies["body"],
                   updates_url=_updates_url(filters, since, context["grid"].shape),
                   metric_rules_off=_metric_rules_off(context["environments"]))
    return {"board": context}


# The boards this process wrote lately, by everything they were written from: the version parts (filters,
# columns, the aggregates of cells and deployments), the columns' slugs, the catalog's rows, the time zone.
# An unchanged board (the usual case: most reloads change nothing) is not read or written again.
_BOARDS = {}
_BOARDS_LIMIT = 4  # a 100 x 50 board is 2.4 MB of HTML: a few, not many, per process


def _grid_and_body(environments, filters, catalog, parts):
    key = (parts, tuple((e.pk, e.slug) for e in environments),
           None if catalog is None else tuple((s.pk, s.name, s.team) for s in catalog), timezone.get_current_timezone_name())
    made = _BOARDS.get(key)
    if made is None:
        grid = board.grid(environments, filters, catalog)
        made = (grid, CellWriter(grid).body())
        if len(_BOARDS) >= _BOARDS_LIMIT:
            _BOARDS.clear()
        _BOARDS[key] = made
    return made


def _updates_url(filters, since, shape):
    query = filters.query()
    return (reverse("board_updates") + "?" + urlencode({"since": since.isoformat(), "shape": shape})
            + (f"&{query}" if query else ""))


def _metric_rules_off(environments):
    if not environments:
        return False
    with_url = VerificationSettings.objects.filter(environment__in=environments).exclude(prometheus_url="").count()
    return with_url == 0


@login_required
@needs_role
def board_updates(request):
    """A poll of the board: 304 when nothing changed (a version from aggregates, nothing rendered); else the
    cells changed since the page's last poll, or the whole grid when its columns or rows changed."""
    filters = board.Filters.from_request(request)
    since = board.parse_since(request.GET.get("since"))
    poll = live.Poll(request)

    parts, latest = board.version(request.user, filters)

    def render_changes(tag):
        environments = board.environments_for(request.user, filters)
        grid = board.grid(environments, filters)
        writer = CellWriter(grid)
        context = {"board_version": tag, "board_updates_url": _updates_url(filters, latest, grid.shape)}
        if grid.shape != request.GET.get("shape") or since is None:
            context["new_grid"] = {"environments": environments, "rows": grid.services, "groups": grid.groups,
                                   "filters": filters, "body": BODY_MARK, "body_html": writer.body()}
            return render_board(request, "monitoring/_board_updates.html", context, context["new_grid"])
        context["cells"] = writer.cells(board.changed_keys(grid, since))
        return render(request, "monitoring/_board_updates.html", context)

    return poll.respond(parts, render_changes, fragment_id=BOARD_FRAGMENT)


@login_required
@needs_role
def service_health(request, slug, name):
    """One service in one environment: status and reason, the last 24 h as a chart, availability, changes."""
    env, service = queries.visible_environment_and_service(request.user, slug, name)
    now = timezone.now()
    cell = CellHealth.objects.select_related("deployment__release").filter(environment=env, service=service).first()
    poll = live.Poll(request)
    parts = (cell.changed_at.isoformat() if cell else None, cell.checked_at.isoformat() if cell else None, now.minute)
    if poll.wants("service-health"):
        return poll.respond(parts, lambda tag: render(request, "monitoring/_service_health.html",
                                                      _service_context(env, service, cell, now, tag)))
    context = _service_context(env, service, cell, now, poll.version_for(parts, "service-health"))
    context["section"] = "dashboard"
    return render(request, "monitoring/service_health.html", context)


def _service_context(env, service, cell, now, tag):
    deployments = list(Deployment.objects.select_related("release").filter(
        environment=env, service=service, finished_at__gte=now - timedelta(hours=24)).order_by("finished_at"))
    return {
        "env": env, "service": service, "cell": cell, "live_version": tag,
        "chart": charts.day_chart(env.pk, service.pk, deployments, now),
        "availability": queries.availability(env.pk, service.pk, now),
        "changes": HealthChange.objects.filter(environment=env, service=service).order_by("-at", "-id")[:50],
        "deployments": deployments,
    }


@login_required
@needs_role
def deployment_verification(request, deployment_id):
    """The verification panel of a deployment page (a live fragment of its own)."""
    deployment = (Deployment.objects.select_related("environment__promotion_from", "release")
                  .filter(pk=deployment_id).first())
    if deployment is None or not roles.can_view_environment(request.user, deployment.environment):
        raise NotFound(f"no deployment #{deployment_id}")
    verification = Verification.objects.filter(deployment=deployment).first()
    fields = queries.deployment_fields(deployment)
    parts = (verification.updated_at.isoformat() if verification else None, fields["rolled_back_by"], fields["auto"])
    poll = live.Poll(request)
    open_ = verification is None and deployment.state in ("pending_approval", "approved", "queued", "running") or (
        verification is not None and verification.state in ("pending", "running"))

    settings = settings_for(deployment.environment)
    gate = None
    if settings.require_verified_promotion and deployment.environment.promotion_from_id:
        gate = {"source": deployment.environment.promotion_from,
                "verification": source_verification(deployment.release, deployment.environment)}

    def render_panel(tag):
        return render(request, "monitoring/_verification.html", {
            "deployment": deployment, "verification": verification, "fields": fields, "gate": gate,
            "settings": settings, "live_version": tag if open_ else None})

    return poll.respond(parts, render_panel, fragment_id="deployment-verification")
