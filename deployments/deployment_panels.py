"""What the page of one deployment shows (the approval page): its context, the decision panel and the
pieces an htmx swap replaces out of band, each answered from `deployments.policies`, so the buttons a
page shows follow the same answers the services enforce."""
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from environments import policies as env_rules
from portal.jobs.views import log_context
from portal.live import Poll, state_of

from . import policies, rendering
from .choices import APPROVE, REJECT
from .choices import DeploymentState as S
from .live import live_deployment
from .manifests import ManifestError, containers_of, effective_resources, limit_range_defaults, parse_documents
from .models import Deployment
from .queries import visible_deployments
from .state import current_manifest_hash


def visible_deployment(request, deployment_id):
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


def detail_context(request, deployment, errors=None, values=None):
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


def panel_response(request, deployment, errors=None, values=None, include_job=False, tag=None):
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


def refresh_page():
    """Tell htmx to reload the whole page (its manifests and diff are out of date)."""
    response = HttpResponse(status=200)
    response["HX-Refresh"] = "true"
    return response
