"""Pages for releases, deployments, approvals, rollbacks and what runs where.

They parse input, call `deployments.promotions`, render (DESIGN rule 1). Who may decide, cancel
or roll back is asked of `deployments.policies` and `portal.accounts.policies`; the buttons a page
shows follow the same answers the services enforce, so a hidden button and a refused POST agree.

htmx swaps only 2xx answers, so an htmx decision that the service refuses is answered with the
decision panel showing the refusal (the service has already audited it); a normal POST gets the
403 page, or the page again with the errors.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import F, Prefetch, Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from environments import policies as env_rules
from environments.models import Environment
from portal import live
from portal.accounts import policies as roles
from portal.errors import Conflict, Forbidden, InvalidInput
from portal.jobs.models import JobLogLine
from portal.jobs.views import duration_text
from portal.views import form_page, needs_role, paginate

from . import policies, promotions, rendering
from .choices import APPROVE, BLUE_GREEN, REJECT, DeploymentState as S
from .flow_api import visible_deployments
from .models import Approval, Deployment, Release, Service, ServiceHealth

try:  # written alongside these pages; the page says so when the dry run is not there
    from .executor import preview as executor_preview
except ImportError:  # pragma: no cover
    executor_preview = None

RECENT_RELEASES = 50
COLORS = ("blue", "green")


# ---------------------------------------------------------------- helpers

def _visible_deployment(request, deployment_id):
    """The deployment, if this user may see its environment; a 404 otherwise."""
    deployment = visible_deployments(request.user).filter(pk=deployment_id).first()
    if deployment is None:
        raise Http404(f"no deployment #{deployment_id}")
    return deployment


def _visible_environment(request, slug):
    env = Environment.objects.filter(slug=slug).first()
    if env is None or not roles.can_view_environment(request.user, env):
        raise Http404(f"no environment '{slug}'")
    return env


def _deployable_environments(user):
    """Environments where this user may request deployments (the deployer role there)."""
    envs = roles.restrict_environments(user, Environment.objects.only("slug", "name", "tier", "status"))
    envs = envs.order_by("name")
    return [env for env in envs if policies.may_request(user, env)]


def _safe_next(request, fallback):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


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


def _inbox(user):
    """Deployments waiting for a decision this user may give, oldest first, with what they still need.

    Three queries whatever the number: the deployments (narrowed in SQL by policies.decidable),
    and their approvals with the approvers; the policy has the final word on each.
    """
    pending = (policies.decidable(user, visible_deployments(user))
               .defer("rendered_manifest", "release__notes", "service__manifest")
               .order_by("requested_at", "id"))
    items = []
    for deployment in pending:
        approvals = list(deployment.approvals.all())
        if not policies.may_decide(user, deployment, approvals=approvals):
            continue
        deployment.approvals_required = policies.approvals_required(deployment)
        deployment.approvals_valid = len(policies.valid_approvals(deployment, approvals=approvals))
        deployment.approvals_missing = max(deployment.approvals_required - deployment.approvals_valid, 0)
        items.append(deployment)
    return items


# ---------------------------------------------------------------- approvals inbox

@login_required
@needs_role
def approval_inbox(request):
    page = paginate(request, _inbox(request.user))
    return render(request, "deployments/inbox.html", {"section": "approvals", "page": page,
                                                      "deployments": page.object_list})


@login_required
def approval_badge(request):
    """The navigation badge: how many deployments wait for this user's decision, as a small SVG image.

    An image rather than an htmx fragment: it needs no script and no trigger on every page (the
    job page, for one, promises not to poll once its job has finished).
    """
    count = policies.count_decidable(user=request.user, queryset=visible_deployments(request.user)) \
        if roles.has_any_role(request.user) else 0
    width = 10 + 7 * len(str(count))
    response = render(request, "deployments/approval_badge.svg",
                      {"count": count, "width": width, "center": width / 2}, content_type="image/svg+xml")
    add_never_cache_headers(response)
    return response


# ---------------------------------------------------------------- the deployment page

def _panel_context(request, deployment, errors=None, values=None):
    """What the decision panel shows: state, approvals (and those that no longer count), the forms."""
    user = request.user
    approvals = list(deployment.approvals.all())
    current = promotions.current_manifest_hash(deployment)
    valid = {a.pk for a in policies.valid_approvals(deployment, current_hash=current, approvals=approvals)}
    stale = dict((a.pk, reason) for a, reason in
                 policies.stale_approvals(deployment, current_hash=current, approvals=approvals))
    required = policies.approvals_required(deployment)
    approve_refusal = policies.decision_refusal(user, deployment, APPROVE, approvals)
    reject_refusal = policies.decision_refusal(user, deployment, REJECT, approvals)
    live = None
    rollback_to = None
    can_roll_back = False
    if deployment.state == S.SUCCEEDED:
        live = promotions.live_deployment(deployment.service_id, deployment.environment_id)
        if live is not None and live.pk == deployment.pk:
            rollback_to = promotions.rollback_target(deployment)
            can_roll_back = rollback_to is not None and policies.may_request(user, deployment.environment)
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
        "checklist": deployment.environment.checklist,
        "errors": errors or [],
        "values": values or {},
        "polling": deployment.state in (S.APPROVED, S.QUEUED, S.RUNNING),
    }


def _job_context(request, deployment):
    job = deployment.job
    if job is None:
        return {"job": None}
    job.duration_text = duration_text(job.duration)
    lines = list(JobLogLine.objects.filter(job_id=job.pk).order_by("id"))
    return {"job": job, "lines": lines, "last_line_id": lines[-1].id if lines else 0,
            "may_manage": roles.can_manage_job(request.user, job)}


def _detail_context(request, deployment, errors=None, values=None):
    env = deployment.environment
    current = promotions.current_manifest_hash(deployment)
    manifests_changed = current != deployment.manifest_hash
    # When the template changed since the request, show what an approval now would be bound to.
    manifest = (rendering.render_text(deployment.service, deployment.release, env) if manifests_changed
                else deployment.rendered_manifest)
    live = promotions.live_deployment(deployment.service_id, deployment.environment_id)
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
        "window_open": env_rules.window_open(windows),
        "next_window": env_rules.next_window_opening(windows),
        "freeze": env_rules.active_freeze(env),
        "start_blocker": policies.start_blocker(deployment) if deployment.state in S.OPEN else None,
        "preview_wanted": deployment.state in S.OPEN,
        "preview_available": executor_preview is not None,
        **_panel_context(request, deployment, errors, values),
        **_job_context(request, deployment),
    }


def _panel_response(request, deployment, errors=None, values=None, include_job=False):
    context = _panel_context(request, deployment, errors, values)
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
    if request.htmx and not request.htmx.history_restore_request:
        # The poll says which job the page shows; a job that started since comes along (out of band).
        new_job = bool(deployment.job_id) and request.GET.get("job", "") != str(deployment.job_id)
        seen = request.GET.get("hash", "")
        if seen and seen != promotions.current_manifest_hash(deployment):
            return _refresh_page()  # the manifests changed: the page's diff is stale, show the new one whole
        return _panel_response(request, deployment, include_job=new_job)
    response = render(request, "deployments/detail.html", _detail_context(request, deployment))
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@needs_role
def deployment_preview(request, deployment_id):
    """The server-side dry run and the diff against the cluster (loaded lazily: the cluster may be slow)."""
    deployment = _visible_deployment(request, deployment_id)
    result = executor_preview(deployment) if executor_preview is not None else None
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
    except promotions.ManifestsChanged as exc:
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
        promotions.approve_deployment(request.user, deployment.pk, comment=request.POST.get("comment", ""),
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
        promotions.reject_deployment(request.user, deployment.pk, comment=request.POST.get("comment", ""),
                                     request=request)

    return _decide(request, deployment, REJECT, reject, "You rejected deployment #{d.pk}.")


@login_required
@needs_role
@require_POST
def deployment_cancel(request, deployment_id):
    deployment = _visible_deployment(request, deployment_id)
    try:
        promotions.cancel_deployment(request.user, deployment.pk, reason=request.POST.get("reason", ""),
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
    back = _safe_next(request, reverse("deployment_detail", args=[deployment.pk]))
    try:
        rollback = promotions.request_rollback(request.user, deployment.pk, reason=request.POST.get("reason", ""),
                                               request=request)
    except (Conflict, InvalidInput) as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect(back)
    messages.success(request, f"Rollback of {deployment.service.name} in {deployment.environment.slug} to "
                              f"{rollback.release.version} requested (deployment #{rollback.pk}); it is now "
                              f"{rollback.get_state_display()}.")
    return redirect("deployment_detail", deployment_id=rollback.pk)


# ---------------------------------------------------------------- requesting a deployment

def _request_context(request, service, values):
    environments = _deployable_environments(request.user)
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
        if not _deployable_environments(request.user):
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
        deployment = promotions.request_deployment(request.user, data, request=request)
    except InvalidInput as exc:
        return form_page(request, "deployments/request.html", _request_context(request, service, values), exc.messages)
    except Conflict as exc:
        return form_page(request, "deployments/request.html", _request_context(request, service, values),
                         exc.messages, 409)
    messages.success(request, f"Deployment #{deployment.pk} of {deployment.release} to {deployment.environment.slug} "
                              f"requested; it is {deployment.get_state_display()}.")
    return redirect("deployment_detail", deployment_id=deployment.pk)


# ---------------------------------------------------------------- lists: deployments, history

@login_required
@needs_role
def deployment_list(request):
    environments = list(roles.restrict_environments(request.user, Environment.objects.only("slug", "name"))
                        .order_by("name"))
    services = list(Service.objects.only("name").order_by("name"))
    filters = {key: request.GET.get(key, "") for key in ("environment", "service", "state")}
    qs = (visible_deployments(request.user).prefetch_related(None)
          .defer("rendered_manifest", "release__notes", "service__manifest", "job__params", "job__result"))
    if filters["environment"] in {env.slug for env in environments}:
        qs = qs.filter(environment__slug=filters["environment"])
    else:
        filters["environment"] = ""
    if filters["service"] in {service.name for service in services}:
        qs = qs.filter(service__name=filters["service"])
    else:
        filters["service"] = ""
    if filters["state"] in S.ALL:
        qs = qs.filter(state=filters["state"])
    else:
        filters["state"] = ""
    return render(request, "deployments/list.html", {
        "section": "deployments",
        "page": paginate(request, qs.order_by("-requested_at", "-id")),
        "filters": filters,
        "filtered": any(filters.values()),
        "environments": environments,
        "services": services,
        "states": S.CHOICES,
        "can_request": any(policies.may_request(request.user, env) for env in environments),
    })


@login_required
@needs_role
def environment_history(request, slug):
    """Which release ran when in one environment, who asked, who approved, and how it ended."""
    env = _visible_environment(request, slug)
    services = list(Service.objects.filter(deployments__environment=env).distinct().only("name").order_by("name"))
    service = request.GET.get("service", "")
    approvers = Prefetch("approvals", queryset=Approval.objects.filter(decision=APPROVE).select_related("user"),
                         to_attr="approvers")
    qs = (Deployment.objects.filter(environment=env)
          .select_related("release", "service", "requested_by")
          .prefetch_related(approvers)
          .defer("rendered_manifest", "release__notes", "service__manifest"))
    if service in {s.name for s in services}:
        qs = qs.filter(service__name=service)
    else:
        service = ""
    return render(request, "deployments/history.html", {
        "section": "environments",
        "env": env,
        "services": services,
        "service": service,
        "page": paginate(request, qs.order_by("-requested_at", "-id")),
    })


# ---------------------------------------------------------------- what runs in an environment

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
    lives = promotions.live_and_rollback_targets(env.pk)
    health = {row.service_id: row for row in ServiceHealth.objects.filter(environment=env)}
    may_roll_back = policies.may_request(request.user, env)
    colors = _colors(env, [sid for sid, (live, _) in lives.items() if live.service.strategy == BLUE_GREEN])
    rows = []
    for live, target in sorted(lives.values(), key=lambda pair: pair[0].service.name):
        rows.append({
            "deployment": live,
            "health": health.get(live.service_id),
            "blue_green": live.service.strategy == BLUE_GREEN,
            "colors": [(color, colors.get(live.service_id, {}).get(color)) for color in COLORS],
            "rollback_to": target if may_roll_back else None,
        })
    return rows


def live_view_parts(request, env):
    """What the "Running now" fragment shows, as cheap version parts (portal/live.py)."""
    return (live.state_of(Deployment.objects.filter(environment=env)),
            live.state_of(ServiceHealth.objects.filter(environment=env), "checked_at"),
            policies.may_request(request.user, env))


@login_required
@needs_role
def environment_live(request, slug):
    """What runs in the environment and whether it is healthy: a live fragment (polled, 304 when unchanged)."""
    env = _visible_environment(request, slug)
    poll = live.Poll(request)

    def render_live(tag=None):
        context = {
            "section": "environments",
            "env": env,
            "rows": _live_rows(request, env),
            "can_request": policies.may_request(request.user, env),
            "live_version": tag or poll.version_for(live_view_parts(request, env), "env-live"),
        }
        return render(request, "deployments/_live.html" if poll.is_poll else "deployments/live.html", context)

    if poll.is_poll:
        return poll.respond(live_view_parts(request, env), render_live, fragment_id="env-live")
    response = render_live()
    patch_vary_headers(response, ("HX-Request",))
    return response


# ---------------------------------------------------------------- releases

def _may_register_releases(user):
    return roles.can_register_releases(user)


@login_required
@needs_role
def release_list(request):
    services = list(Service.objects.only("name").order_by("name"))
    service = request.GET.get("service", "")
    qs = Release.objects.select_related("service", "created_by").defer("service__manifest", "notes")
    if service in {s.name for s in services}:
        qs = qs.filter(service__name=service)
    else:
        service = ""
    return render(request, "deployments/releases.html", {
        "section": "deployments",
        "page": paginate(request, qs.order_by("-created_at", "-id")),
        "services": services,
        "service": service,
        "can_register": _may_register_releases(request.user),
        "can_request": bool(_deployable_environments(request.user)),
    })


RELEASE_FIELDS = ("service", "version", "image", "git_sha", "notes")


@login_required
@needs_role
def release_create(request):
    context = {"section": "deployments", "services": Service.objects.only("name").order_by("name")}
    if request.method != "POST":
        if not _may_register_releases(request.user):
            raise PermissionDenied("registering releases needs the deployer role")
        return render(request, "deployments/release_form.html",
                      dict(context, values={"service": request.GET.get("service", "")}))
    data = {field: request.POST.get(field, "").strip() for field in RELEASE_FIELDS}
    data["notes"] = request.POST.get("notes", "").replace("\r\n", "\n").strip()
    try:
        release = promotions.register_release(request.user, data, request=request)
    except InvalidInput as exc:
        return form_page(request, "deployments/release_form.html", dict(context, values=data), exc.messages)
    except Conflict as exc:
        return form_page(request, "deployments/release_form.html", dict(context, values=data), exc.messages, 409)
    messages.success(request, f"Release {release.service.name} {release.version} registered.")
    return redirect(f"{reverse('release_list')}?service={release.service.name}")
