"""Pages of deployments: one deployment's page (the approval page) and its dry run, the request form and
the list. They parse input, call `deployments.actions`, render; what the deployment page shows is
`deployment_panels`, what people do on it `deployment_action_views`."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers

from environments.models import Environment
from portal.accounts import policies as roles
from portal.errors import Conflict, InvalidInput, audit_conflict
from portal.live import Poll, state_of
from portal.pages import form_page, needs_role, paginate

from . import actions, policies
from .choices import DeploymentState as S
from .deployment_panels import (
    deployment_parts, detail_context, diff_rows, panel_response, refresh_page, visible_deployment,
)
from .models import Service
from .preview import show_dry_run
from .queries import deployable_environments, visible_deployments
from .state import current_manifest_hash

RECENT_RELEASES = 50


@login_required
@needs_role
def deployment_detail(request, deployment_id):
    """The approval page; to an htmx poll only the decision panel (and the job, once it exists)."""
    deployment = visible_deployment(request, deployment_id)
    poll = Poll(request)
    if poll.is_poll:
        seen = request.GET.get("hash", "")
        if seen and seen != current_manifest_hash(deployment):
            return refresh_page()  # the manifests changed: the page's diff is stale, show the new one whole
        return poll.respond(deployment_parts(deployment), lambda tag: panel_response(
            request, deployment, include_job=True, tag=tag), fragment_id="decision-panel")
    response = render(request, "deployments/detail.html", detail_context(request, deployment))
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@needs_role
def deployment_preview(request, deployment_id):
    """The server-side dry run and the diff against the cluster (loaded lazily: the cluster may be slow)."""
    deployment = visible_deployment(request, deployment_id)
    result = show_dry_run(request.user, deployment, request=request)
    objects = []
    for obj in (result or {}).get("objects", []):
        objects.append(dict(obj, rows=diff_rows(obj["diff"])))
    return render(request, "deployments/_preview.html", {
        "deployment": deployment, "available": result is not None, "result": result, "objects": objects,
    })


def _request_context(request, service, values):
    environments = deployable_environments(request.user)
    releases = list(service.releases.only("id", "version", "image", "created_at").order_by("-created_at", "-id")
                    [:RECENT_RELEASES]) if service else []
    return {
        "section": "deployments",
        "service": service,
        "services": Service.objects.only("name").order_by("name"),
        "releases": releases,
        "environments": environments,
        "can_break_glass": any(roles.has_role(request.user, roles.ADMIN, env) for env in environments),
        "values": values,
    }


@login_required
@needs_role
def deployment_request(request):
    source = request.POST if request.method == "POST" else request.GET
    name = source.get("service", "").strip()
    service = Service.objects.filter(name=name).first() if name else None
    if request.method != "POST":
        if not deployable_environments(request.user):
            raise PermissionDenied("requesting deployments needs the deployer role for an environment")
        values = {"release": request.GET.get("release", ""), "environment": request.GET.get("environment", "")}
        context = _request_context(request, service, values)
        if name and service is None:
            context["errors"] = [f"service: no service named '{name}'"]
        return render(request, "deployments/request.html", context)
    release = request.POST.get("release", "").strip()
    values = {
        "release": release,
        "environment": request.POST.get("environment", "").strip(),
        "start_now": bool(request.POST.get("start_now")),
        "break_glass": bool(request.POST.get("break_glass")),
        "break_glass_reason": request.POST.get("break_glass_reason", ""),
    }
    data = {"release": int(release) if release.isascii() and release.isdigit() else release, "environment": values["environment"],
            "start_now": values["start_now"]}
    if values["break_glass"]:
        data["break_glass"] = {"reason": values["break_glass_reason"]}
    try:
        deployment = actions.request_deployment(request.user, data, request=request)
    except InvalidInput as exc:
        return form_page(request, "deployments/request.html", _request_context(request, service, values), exc.messages)
    except Conflict as exc:  # a refusal (freeze, closed window, promotion order), not a mistake in the form
        audit_conflict(request, exc)
        return form_page(request, "deployments/request.html",
                         dict(_request_context(request, service, values), refused=True), exc.messages, 409)
    messages.success(request, f"Deployment #{deployment.pk} of {deployment.release} to {deployment.environment.slug} "
                              f"requested; it is {deployment.get_state_display()}.")
    return redirect("deployment_detail", deployment_id=deployment.pk)


def _deployment_list_query(request):
    """The list's filters and the deployments they select. A filter is applied as given (an unknown
    environment or service matches nothing), so the page and its poll read the same rows without
    first listing every environment and service."""
    filters = {key: request.GET.get(key, "").strip() for key in ("environment", "service", "state")}
    qs = (visible_deployments(request.user).prefetch_related(None)
          .defer("rendered_manifest", "release__notes", "service__manifest", "job__params", "job__result"))
    if filters["environment"]:
        qs = qs.filter(environment__slug=filters["environment"])
    if filters["service"]:
        qs = qs.filter(service__name=filters["service"])
    if filters["state"] in S.ALL:
        qs = qs.filter(state=filters["state"])
    else:
        filters["state"] = ""
    return filters, qs


@login_required
@needs_role
def deployment_list(request):
    """The list of deployments; its table is a live fragment (portal/live.py) whose version is the count
    and latest change of the filtered rows (one aggregate query), so an unchanged list answers 304."""
    filters, qs = _deployment_list_query(request)
    poll = Poll(request)
    parts = state_of(qs, "updated_at")

    def render_list(tag):
        environments = list(roles.restrict_environments(request.user, Environment.objects.only("slug", "name"))
                            .order_by("name"))
        context = {"page": paginate(request, qs.order_by("-requested_at", "-id"), count=parts[0]),
                   "filters": filters,
                   "filtered": any(filters.values()), "list_version": tag,
                   "can_request": any(policies.may_request(request.user, env) for env in environments)}
        if poll.is_poll:
            return render(request, "deployments/_table.html", context)
        return render(request, "deployments/list.html", dict(
            context, section="deployments", environments=environments, states=S.CHOICES,
            services=list(Service.objects.only("name").order_by("name"))))

    if poll.wants("deployment-table"):
        return poll.respond(parts, render_list)
    return render_list(poll.version_for(parts, "deployment-table"))
