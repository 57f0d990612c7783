"""Pages of one deployment (the approval page, its decisions, cancel, rollback), the request form and the list.

They parse input, call `deployments.actions`, render (DESIGN rule 1). Who may decide, cancel
or roll back is asked of `deployments.policies` and `portal.accounts.policies`; the buttons a page
shows follow the same answers the services enforce, so a hidden button and a refused POST agree.

htmx swaps only 2xx answers, so an htmx decision that the service refuses is answered with the
decision panel showing the refusal (the service has already audited it); a normal POST gets the
403 page, or the page again with the errors.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from environments import policies as env_rules
from environments.models import Environment
from portal.accounts import policies as roles
from portal.errors import Conflict, Forbidden, InvalidInput
from portal.live import Poll, state_of
from portal.jobs.views import log_context
from portal.pages import form_page, needs_role, paginate, safe_next

from . import actions, policies, rendering
from .choices import APPROVE, REJECT
from .choices import DeploymentState as S
from .live import live_deployment
from .models import Deployment, Service
from .preview import show_dry_run
from .queries import deployable_environments, visible_deployments
from .state import current_manifest_hash

RECENT_RELEASES = 50


def _visible_deployment(request, deployment_id):
    """The deployment, if this user may see its environment; a 404 otherwise."""
    deployment = visible_deployments(request.user).filter(pk=deployment_id).first()
    if deployment is None:
        raise Http404(f"no deployment #{deployment_id}")
    return deployment


def diff_rows(lines):
    """(css class, line) pairs for a unified diff, so + and - lines can be coloured.

    Only the first two lines are the file headers: a removed YAML separator is "----" too.
    """
    rows = []
    for index, line in enumerate(lines):
        if index < 2 and line.startswith(("+++", "---")):
            css = "diff-file"
        elif line.startswith("@@"):
            css = "diff-hunk"
        elif line.startswith("+"):
            css = "diff-add"
        elif line.startswith("-"):
            css = "diff-del"
        else:
            css = "diff-context"
        rows.append((css, line))
    return rows


def _panel_context(request, deployment, errors=None, values=None):
    """What the decision panel shows: state, approvals (and those that no longer count), the forms."""
    user = request.user
    approvals = list(deployment.approvals.all())
    current = current_manifest_hash(deployment)
    valid = {a.pk for a in policies.valid_approvals(deployment, current_hash=current, approvals=approvals)}
    stale = dict((a.pk, reason) for a, reason in
                 policies.stale_approvals(deployment, current_hash=current, approvals=approvals))
    required = policies.approvals_required(deployment)
    approve_refusal = policies.decision_refusal(user, deployment, APPROVE, approvals)
    reject_refusal = policies.decision_refusal(user, deployment, REJECT, approvals)
    live = None
    rollback_to = rollback_blocker = None
    can_roll_back = False
    if deployment.state == S.SUCCEEDED:
        live = live_deployment(deployment.service_id, deployment.environment_id)
        if live is not None and live.pk == deployment.pk:
            rollback_to, rollback_blocker = policies.rollback_plan(deployment)
            can_roll_back = rollback_to is not None and policies.rollback_refusal(user, deployment.environment) is None
    return {
        "deployment": deployment,
        "current_manifest_hash": current,
        "approval_rows": [{"approval": a, "counts": a.pk in valid, "stale": stale.get(a.pk)} for a in approvals],
        "approvals_required": required,
        "approvals_valid": len(valid),
        "approvals_missing": max(required - len(valid), 0),
        "may_approve": approve_refusal is None,
        "may_reject": reject_refusal is None,
        "approve_refusal": approve_refusal,
        "decisions_open": deployment.state == S.PENDING_APPROVAL,
        "may_cancel": policies.may_cancel(user, deployment),
        "is_live": live is not None and live.pk == deployment.pk,
        "can_roll_back": can_roll_back,
        "rollback_to": rollback_to,
        "rollback_blocker": rollback_blocker,
        "checklist": deployment.environment.checklist,
        "errors": errors or [],
        "values": values or {},
        "refused": bool((values or {}).get("refused")),
        "rollback_rules": policies.rollback_rules(deployment.environment) if can_roll_back else "",
        "panel_poll_url": f"{reverse('deployment_detail', args=[deployment.pk])}?hash={current}",
        "panel_version": Poll(request).version_for(deployment_parts(deployment), "decision-panel"),
        **_change_summary(deployment, current),
    }


def deployment_parts(deployment):
    """What the approval page shows that can change while it is open, as live version parts
    (portal/live.py): the deployment row, its approvals (prefetched), what runs in its environment
    and its job. One query beyond what the page loads anyway."""
    job = deployment.job
    return (deployment.state, deployment.updated_at.isoformat(), deployment.job_id,
            tuple((a.pk, a.decision) for a in deployment.approvals.all()),
            state_of(Deployment.objects.filter(service_id=deployment.service_id,
                                               environment_id=deployment.environment_id)),
            (job.state, str(job.started_at), str(job.finished_at)) if job else None)


def _change_summary(deployment, current):
    """Next to the decision buttons: how much changes against what runs now (the diff is above)."""
    if deployment.state != S.PENDING_APPROVAL:
        return {"change_summary": None}
    running = live_deployment(deployment.service_id, deployment.environment_id)
    if running is None or running.pk == deployment.pk:
        return {"change_summary": {"first": True}}
    manifest = (deployment.rendered_manifest if current == deployment.manifest_hash
                else rendering.render_text(deployment.service, deployment.release, deployment.environment))
    running = Deployment.objects.only("rendered_manifest", "release__version").select_related("release").get(
        pk=running.pk)
    rows = diff_rows(rendering.manifest_diff(running.rendered_manifest, manifest))
    return {"change_summary": {
        "first": False, "from_version": running.release.version,
        "added": sum(1 for css, _ in rows if css == "diff-add"),
        "removed": sum(1 for css, _ in rows if css == "diff-del"),
    }}


def _job_context(request, deployment):
    job = deployment.job
    if job is None:
        return {"job": None}
    return log_context(request, job)


def _effective_resources(manifest, env):
    """Each container's CPU and memory as it will run: set in the manifest or given by the
    environment's LimitRange defaults (so an approver sees what a manifest without them gets)."""
    from .manifests import ManifestError, containers_of, effective_resources, limit_range_defaults, parse_documents

    try:
        documents = parse_documents(manifest)
    except ManifestError:
        return []
    defaults = limit_range_defaults(env)
    rows = []
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        for _, container in containers_of(doc):
            found = effective_resources(container, defaults)
            cells = [found.get(section, {}).get(name, ("not set", "missing"))
                     for section, name in (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))]
            rows.append({"object": f"{doc.get('kind')} {(doc.get('metadata') or {}).get('name')}",
                         "container": container.get("name", "?"), "cells": cells,
                         "defaulted": any(source == "LimitRange default" for _, source in cells)})
    return rows


def _detail_context(request, deployment, errors=None, values=None):
    env = deployment.environment
    current = current_manifest_hash(deployment)
    manifests_changed = current != deployment.manifest_hash
    # When the template changed since the request, show what an approval now would be bound to.
    manifest = (rendering.render_text(deployment.service, deployment.release, env) if manifests_changed
                else deployment.rendered_manifest)
    live = live_deployment(deployment.service_id, deployment.environment_id)
    if live is not None and live.pk != deployment.pk:
        live = Deployment.objects.select_related("release", "requested_by").get(pk=live.pk)
        diff = diff_rows(rendering.manifest_diff(live.rendered_manifest, manifest))
    else:
        diff = []
    windows = env.deployment_windows
    return {
        "section": "deployments",
        "env": env,
        "release": deployment.release,
        "live": live,
        "manifest": manifest,
        "manifests_changed": manifests_changed,
        "diff": diff,
        "effective_resources": _effective_resources(manifest, env),
        "window_open": env_rules.window_open(windows),
        "next_window": env_rules.next_window_opening(windows),
        "freeze": env_rules.active_freeze(env),
        "start_blocker": policies.start_blocker(deployment) if deployment.state in S.OPEN else None,
        "preview_wanted": deployment.state in S.OPEN,
        "preview_available": True,
        **_panel_context(request, deployment, errors, values),
        **_job_context(request, deployment),
    }


def _running_now_context(deployment):
    running = live_deployment(deployment.service_id, deployment.environment_id)
    if running is not None and running.pk != deployment.pk:
        running = Deployment.objects.select_related("release", "requested_by").get(pk=running.pk)
    return {"live": running, "env": deployment.environment, "release": deployment.release}


def _panel_response(request, deployment, errors=None, values=None, include_job=False, tag=None):
    """The decision panel, with the rest of the page that can change swapped out of band: the state
    badge, the release's times and colour, what runs now, the error, and the job."""
    context = _panel_context(request, deployment, errors, values)
    if tag:
        context["panel_version"] = tag
    context.update(_running_now_context(deployment), live_oob=True)
    if include_job and deployment.job_id:
        context.update(_job_context(request, deployment), job_oob=True)
    response = render(request, "deployments/_decision_fragment.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@needs_role
def deployment_detail(request, deployment_id):
    """The approval page; to an htmx poll only the decision panel (and the job, once it exists)."""
    deployment = _visible_deployment(request, deployment_id)
    poll = Poll(request)
    if poll.is_poll:
        seen = request.GET.get("hash", "")
        if seen and seen != current_manifest_hash(deployment):
            return _refresh_page()  # the manifests changed: the page's diff is stale, show the new one whole
        return poll.respond(deployment_parts(deployment), lambda tag: _panel_response(
            request, deployment, include_job=True, tag=tag), fragment_id="decision-panel")
    response = render(request, "deployments/detail.html", _detail_context(request, deployment))
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@needs_role
def deployment_preview(request, deployment_id):
    """The server-side dry run and the diff against the cluster (loaded lazily: the cluster may be slow)."""
    deployment = _visible_deployment(request, deployment_id)
    result = show_dry_run(request.user, deployment, request=request)
    objects = []
    for obj in (result or {}).get("objects", []):
        objects.append(dict(obj, rows=diff_rows(obj["diff"])))
    return render(request, "deployments/_preview.html", {
        "deployment": deployment, "available": result is not None, "result": result, "objects": objects,
    })


def _refresh_page():
    """Tell htmx to reload the whole page (its manifests and diff are out of date)."""
    response = HttpResponse(status=200)
    response["HX-Refresh"] = "true"
    return response


def _decide(request, deployment, decision, action, done_message):
    """Run a decision; answer htmx with the panel, a normal POST with a redirect (or the page with errors)."""
    values = {"comment": request.POST.get("comment", ""), "checklist": request.POST.getlist("checklist"),
              "decision": decision}
    errors, status = [], 200
    try:
        action()
    except actions.ManifestsChanged as exc:
        messages.error(request, "; ".join(exc.messages))
        return _refresh_page() if request.htmx else redirect("deployment_detail", deployment_id=deployment.pk)
    except InvalidInput as exc:
        errors, status = exc.messages, 400
    except Conflict as exc:
        errors, status = exc.messages, 409
    except Forbidden as exc:
        if not request.htmx:
            raise  # the 403 page (refusals_as_pages); the service audited the refusal
        errors, status = exc.messages, 403
    if status in (403, 409):
        values["refused"] = True  # a refusal reads as one, not as a form to fix
    deployment = _visible_deployment(request, deployment.pk)
    if request.htmx:
        return _panel_response(request, deployment, errors, values if errors else None, include_job=not errors)
    if status == 409:
        messages.error(request, "; ".join(errors))
    elif errors:
        return render(request, "deployments/detail.html",
                      _detail_context(request, deployment, errors, values), status=status)
    else:
        messages.success(request, done_message.format(d=deployment, state=deployment.get_state_display()))
    return redirect("deployment_detail", deployment_id=deployment.pk)


@login_required
@needs_role
@require_POST
def deployment_approve(request, deployment_id):
    deployment = _visible_deployment(request, deployment_id)

    def approve():
        actions.approve_deployment(request.user, deployment.pk, comment=request.POST.get("comment", ""),
                                      checklist=request.POST.getlist("checklist"),
                                      seen_manifest_hash=request.POST.get("seen_manifest_hash") or None,
                                      request=request)

    return _decide(request, deployment, APPROVE, approve, "You approved deployment #{d.pk}; it is now {state}.")


@login_required
@needs_role
@require_POST
def deployment_reject(request, deployment_id):
    deployment = _visible_deployment(request, deployment_id)

    def reject():
        actions.reject_deployment(request.user, deployment.pk, comment=request.POST.get("comment", ""),
                                     request=request)

    return _decide(request, deployment, REJECT, reject, "You rejected deployment #{d.pk}.")


@login_required
@needs_role
@require_POST
def deployment_cancel(request, deployment_id):
    deployment = _visible_deployment(request, deployment_id)
    try:
        actions.cancel_deployment(request.user, deployment.pk, reason=request.POST.get("reason", ""),
                                     request=request)
    except (Conflict, InvalidInput) as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"Deployment #{deployment.pk} cancelled.")
    return redirect("deployment_detail", deployment_id=deployment.pk)


@login_required
@needs_role
@require_POST
def deployment_rollback(request, deployment_id):
    deployment = _visible_deployment(request, deployment_id)
    back = safe_next(request, reverse("deployment_detail", args=[deployment.pk]))
    try:
        rollback = actions.request_rollback(request.user, deployment.pk, reason=request.POST.get("reason", ""),
                                               request=request)
    except (Conflict, InvalidInput) as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect(back)
    messages.success(request, f"Rollback of {deployment.service.name} in {deployment.environment.slug} to "
                              f"{rollback.release.version} requested (deployment #{rollback.pk}); it is now "
                              f"{rollback.get_state_display()}.")
    return redirect("deployment_detail", deployment_id=rollback.pk)


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
