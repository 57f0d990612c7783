"""Pages of self-service environments: the create form (checked as you type), the provisioning
page, approving or rejecting a request, extending, and the template admin pages. Views parse
input, call environments.self_service / approvals / expiry, and render; they hold no rule."""
import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from deployments.models import Deployment
from portal import kube, live
from portal.accounts import policies
from portal.audit.models import AuditEvent
from portal.errors import Conflict, InvalidInput
from portal.live import state_of
from portal.pages import (
    button_action,
    delete_page,
    field_errors,
    form_action,
    form_page,
    needs_role,
    require,
    safe_next,
)
from portal.quantity import QuantityError, parse

from . import approvals, expiry, self_service
from .approvals import pending_purpose, required_approvals
from .choices import TIERS
from .guardrails import approval_reason, parameter_bounds, ttl_bounds
from .models import Cluster, EnvironmentTemplate
from .provisioning import QUOTA_NAME
from .queries import visible_environment
from .self_service import check_request, request_environment, request_refusal, template_snapshot
from .serializers import template_out


def _back(request, env):
    return redirect(safe_next(request, reverse("environment_detail", args=[env.slug])))


@login_required
@needs_role
@require_POST
def environment_decide(request, slug, decision):
    env = visible_environment(request.user, slug)
    word = "approved" if decision == approvals.APPROVE else "rejected"
    return button_action(
        request, lambda: approvals.decide(request.user, env, decision, comment=request.POST.get("comment", ""),
                                          request=request)[0],
        done=lambda decided: f"You {word} the request for {decided.name}; it is now {decided.status}.",
        back=_back(request, env), refusals=(InvalidInput, Conflict))


@login_required
@needs_role
@require_POST
def environment_extend(request, slug):
    env = visible_environment(request.user, slug)
    hours = request.POST.get("hours", "")  # environments.schemas.Extension reads the text
    return button_action(request, lambda: expiry.extend_environment(request.user, env, hours, request=request),
                         done=lambda extended: f"{extended.name} now expires {extended.expires_at:%Y-%m-%d %H:%M %Z}.",
                         back=_back(request, env), refusals=(InvalidInput, Conflict))


# ---------------------------------------------------------------- the create form

def _request_data(post):
    data = {"name": post.get("name", "").strip(), "template": post.get("template", "").strip()}
    for field in ("slug", "ttl_hours", "team", "description"):
        if post.get(field, "").strip():
            data[field] = post.get(field).strip()
    parameters = {key[len("param_"):]: value.strip() for key, value in post.items()
                  if key.startswith("param_") and value.strip()}
    if parameters:
        data["parameters"] = parameters
    return data


def _form_context(request, values, template_name=None):
    templates = list(EnvironmentTemplate.objects.order_by("name"))
    chosen = next((t for t in templates if t.name == (template_name or values.get("template"))), None)
    chosen = chosen or (templates[0] if templates else None)
    bounds = parameter_bounds(chosen) if chosen else {}
    params = values.get("parameters") or {}
    return {
        "section": "environments",
        "templates": templates,
        "chosen": chosen,
        "bounds": [(name, b, params.get(name, "")) for name, b in bounds.items()],
        "ttl_default": ttl_bounds(chosen)[0] if chosen else None,
        "ttl_max": ttl_bounds(chosen)[1] if chosen else None,
        "values": values,
    }


def _check_context(request, data):
    """What the form shows as the user types: each problem by field, whether approval is needed."""

    clean, errors, taken = check_request(request.user, data) if data.get("template") else ({}, [], [])
    problems = errors + taken
    if not data.get("name"):
        problems = [p for p in problems if not p.startswith("name:")]
    approval = approval_reason(clean["template"], clean.get("parameters")) if clean.get("template") and not problems \
        else None
    return {"check_problems": problems, "check_by_field": field_errors(problems), "approval": approval,
            "slug": clean.get("slug")}


@login_required
@needs_role
def environment_request(request):
    """Create an environment from a template: the short form, checked as you type."""

    require(request_refusal(request.user))
    if request.method != "POST":
        values = {"template": request.GET.get("template", "")}
        return render(request, "environments/request.html", _form_context(request, values))
    data = _request_data(request.POST)
    return form_action(request, lambda: request_environment(request.user, data, request=request),
                       template="environments/request.html", context=_form_context(request, data),
                       done=lambda env: f"{env.name} was requested; it is created once an approver agrees."
                       if env.status == "requested" else "",
                       then=lambda env: reverse("environment_provisioning", args=[env.slug]))


@login_required
@needs_role
def environment_request_check(request):
    """htmx: the form's check panel (name free and a DNS label, values within the bounds shown)."""

    data = _request_data(request.POST if request.method == "POST" else request.GET)
    context = _form_context(request, data) | _check_context(request, data)
    return render(request, "environments/_request_check.html", context)


# ---------------------------------------------------------------- provisioning page and quota

def _provisioning_parts(env):
    return (env.status, env.updated_at.isoformat(),
            state_of(AuditEvent.objects.filter(environment=env.slug, action="environment.resource_apply"), "at"),
            state_of(Deployment.objects.filter(environment=env)))


def _provisioning_context(request, env):
    events = list(AuditEvent.objects.filter(environment=env.slug, action="environment.resource_apply")
                  .order_by("seq").only("seq", "at", "outcome", "detail"))
    resources = {}
    for event in events:  # the latest outcome of each resource (a retry replaces a failure)
        resources[event.detail.get("resource")] = event
    deployments = list(Deployment.objects.filter(environment=env).select_related("release", "service")
                       .order_by("requested_at", "id"))
    purpose = pending_purpose(env)
    services_done = all(d.state == "succeeded" for d in deployments)
    return {
        "section": "environments",
        "env": env,
        "resources": list(resources.values()),
        "deployments": deployments,
        "expected_services": (env.guardrails or {}).get("services") or [],
        "pending": purpose,
        "approvals_required": required_approvals(env, purpose) if purpose else None,
        "decisions": list(env.approvals.select_related("user")),
        "ready": env.status == "ready" and services_done,
        "job": env.jobs.filter(kind="environment.provision").order_by("-created_at").first(),
    }


@login_required
@needs_role
def environment_provisioning(request, slug):
    """Each resource applied, each service deployed, then "ready" with links; live while it moves."""

    env = visible_environment(request.user, slug)
    poll = live.Poll(request)
    parts = _provisioning_parts(env)
    finished = env.status in ("ready", "failed", "deleted", "rejected") and all(
        d.state in ("succeeded", "failed", "cancelled", "rejected", "rolled_back") for d in env.deployments.all())

    def fragment(tag):
        return render(request, "environments/_provisioning.html",
                      _provisioning_context(request, env) | {"live_version": None if finished else tag})

    if poll.wants("provisioning"):
        return poll.respond(parts, fragment)
    context = _provisioning_context(request, env)
    context["live_version"] = None if finished else poll.version_for(parts, "provisioning")
    return render(request, "environments/provisioning.html", context)


def quota_usage(env):
    """Rows of the namespace's ResourceQuota: (key, used, hard, percent), read from its status."""

    quota = kube.get(env.cluster, "v1", "ResourceQuota", env.namespace, QUOTA_NAME)
    if quota is None:
        return None
    status = quota.get("status") or {}
    rows = []
    for key, hard in sorted((status.get("hard") or {}).items()):
        used = (status.get("used") or {}).get(key, "0")
        try:
            percent = min(100, round(100 * parse(used) / parse(hard))) if parse(hard) else 0
        except QuantityError:
            percent = 0
        rows.append({"key": key, "used": used, "hard": hard, "percent": int(percent)})
    return rows


@login_required
@needs_role
def environment_quota(request, slug):
    """The quota bars (used / hard from the ResourceQuota's status), loaded by htmx after the page."""

    env = visible_environment(request.user, slug)
    rows, error = None, ""
    if env.cluster_id and env.status == "ready":
        try:
            rows = quota_usage(env)
        except (kube.KubeError, ValueError, OSError) as exc:
            error = str(exc)
    return render(request, "environments/_quota.html", {"env": env, "rows": rows, "error": error})


# ---------------------------------------------------------------- template admin pages

JSON_FIELDS = ("quota", "limit_range", "parameters", "services")


@login_required
@needs_role
def template_list(request):
    templates = [template_out(t) for t in EnvironmentTemplate.objects.select_related("cluster").order_by("name")]
    return render(request, "environments/templates.html", {"section": "environments", "templates": templates,
                                                           "can_manage": policies.is_admin(request.user)})


def _template_values(template):
    values = template_snapshot(template)
    for field in JSON_FIELDS:
        values[field] = json.dumps(values[field], indent=2)
    return values


@login_required
@needs_role
def template_edit(request, name=None):
    """Create (no name) or edit a template; the guardrail fields are JSON, checked by the policy."""

    template = get_object_or_404(EnvironmentTemplate, name=name) if name else None
    context = {"section": "environments", "template": template, "tiers": TIERS,
               "clusters": Cluster.objects.only("name"), "network_policies": ("default-deny", "none")}
    if request.method != "POST":
        require(policies.admin_refusal(request.user, "define environment templates"))
        values = _template_values(template) if template else {"network_policy": "default-deny",
                                                              "ingress_namespace": "ingress-nginx",
                                                              "quota": "{}", "limit_range": "{}",
                                                              "parameters": "{}", "services": "[]"}
        return render(request, "environments/template_form.html", context | {"values": values})
    post = request.POST
    values = {key: post.get(key, "") for key in ("name", "description", "tier", "cluster", "network_policy",
                                                 "ingress_namespace", "ttl_hours", "max_ttl_hours",
                                                 "required_approvals", *JSON_FIELDS)}
    data, errors = {}, []
    for field in ("description", "tier", "network_policy", "ingress_namespace"):
        data[field] = values[field].strip()
    data["cluster"] = values["cluster"] or None
    if template is None:
        data["name"] = values["name"].strip()
    for field in ("ttl_hours", "max_ttl_hours", "required_approvals"):  # whole numbers: the schema reads the text
        text = values[field].strip()
        if text or field != "required_approvals":
            data[field] = text
    data["requires_approval"] = post.get("requires_approval") == "on"
    for field in JSON_FIELDS:
        try:
            data[field] = json.loads(values[field] or ("[]" if field == "services" else "{}"))
        except ValueError as exc:
            errors.append(f"{field}: not valid JSON ({exc})")
    if errors:
        return form_page(request, "environments/template_form.html", context | {"values": values}, errors)

    def save():
        if template is None:
            return self_service.create_template(request.user, data, request=request)
        return self_service.update_template(request.user, template, data, request=request)

    return form_action(request, save, template="environments/template_form.html", context=context | {"values": values},
                       done=lambda saved: f"Template {saved.name} saved.", then="template_list")


@login_required
@needs_role
def template_delete(request, name):
    template = get_object_or_404(EnvironmentTemplate, name=name)
    return delete_page(request, confirm={
        "section": "environments", "title": f"Delete template {template.name}?",
        "what": f"the template {template.name}",
        "consequence": "Environments created from it keep their guardrails; nobody can create new ones from it.",
        "cancel_url": reverse("template_list"),
    }, delete=lambda: self_service.delete_template(request.user, template, request=request),
        done=(f"Template {template.name} deleted.", "template_list"), back="template_list")
