"""Self-service environments: templates (admin), requests from a template (deployers, CI).

Every rule comes from ``environments.guardrails``; this module orders the steps, writes the
rows and their audit events in one transaction, and queues the provisioning job.
"""
from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.accounts import policies as roles
from portal.audit.services import diff, record
from portal.audit.writes import change_audited, create_audited, delete_audited
from portal.errors import Conflict, InvalidInput, deny, deny_if
from portal.jobs.services import enqueue_job
from portal.validation import slugify_name

from . import guardrails
from .choices import TIERS, EnvironmentStatus
from .clusters import default_cluster
from .models import Cluster, Environment, EnvironmentTemplate
from .schemas import EnvironmentCreate, TemplateChange, TemplateCreate
from .snapshot import env_snapshot

TEMPLATE_FIELDS = ("name", "description", "tier", "cluster", "quota", "limit_range", "network_policy",
                   "ingress_namespace", "ttl_hours", "max_ttl_hours", "requires_approval", "required_approvals",
                   "parameters", "services")
REQUEST_FIELDS = {"name", "tier", "slug", "cluster", "namespace", "template", "ttl_hours", "team", "description",
                  "parameters"}


# ---------------------------------------------------------------- templates

def template_snapshot(template):
    data = {field: getattr(template, field) for field in TEMPLATE_FIELDS}
    data["cluster"] = template.cluster.name if template.cluster_id else None
    return data


def create_template(user, data, request=None):
    deny_if(roles.admin_refusal(user, "define environment templates"), "environment_template.create", user=user,
            request=request)
    clean = TemplateCreate.validated(data)
    errors = guardrails.template_problems(clean)
    if errors:
        raise InvalidInput(errors)
    return create_audited(EnvironmentTemplate(**clean), "environment_template.create", snapshot=template_snapshot,
                          actor=user, request=request,
                          taken=f"a template named '{clean['name']}' was created at the same moment")


def update_template(user, template, data, request=None):
    deny_if(roles.admin_refusal(user, "change environment templates"), "environment_template.update", user=user,
            request=request, target=template)
    clean = TemplateChange.validated(data)
    errors = guardrails.template_problems(clean, instance=template)
    if errors:
        raise InvalidInput(errors)
    return change_audited(template, clean, "environment_template.update", snapshot=template_snapshot, actor=user,
                          request=request)


def delete_template(user, template, request=None):
    deny_if(roles.admin_refusal(user, "remove environment templates"), "environment_template.delete", user=user,
            request=request, target=template)
    delete_audited(template, "environment_template.delete", snapshot=template_snapshot, actor=user, request=request)


# ---------------------------------------------------------------- requests

def may_request_from(user, template):
    """Deployers may ask for any template (protected tiers then wait for approval); admins too."""
    return roles.is_admin(user) or roles.has_role(user, roles.DEPLOYER)


def request_refusal(user, template=None):
    """Why `user` may not ask for an environment (from `template`): None when they may. The service
    denies with it; the request page asks it first."""
    return None if may_request_from(user, template) else "creating environments needs the deployer or admin role"


def check_request(user, data):
    """Validate a request from a template without writing anything: the form calls this as the user
    types, the API and request_environment before they write. Returns (clean, errors, taken) where
    `taken` lists the name collisions (409 at the API) apart from the other problems (400)."""
    errors, taken = [], []
    unknown = set(data) - REQUEST_FIELDS
    if unknown:
        errors.append(f"unknown field(s): {', '.join(sorted(unknown))}")
    name = data.get("template")
    template = EnvironmentTemplate.objects.select_related("cluster").filter(name=name).first() if name else None
    if template is None:
        known = ", ".join(EnvironmentTemplate.objects.values_list("name", flat=True)) or "none yet"
        return {}, [f"template: no environment template named '{name}' (templates: {known})"], []
    clean = {"template": template}
    shared = {"template": name, "tier": data.get("tier") or template.tier,
              **{f: data.get(f) for f in ("name", "team", "description")}}
    try:  # the fields a request shares with every environment's creation: one declared rule each
        about = EnvironmentCreate.validated(shared)
    except InvalidInput as exc:
        errors += exc.messages
        about = {}
    display = about.get("name")
    clean["name"] = display
    slug = data.get("slug") or slugify_name(display or "")
    if shared["tier"] in TIERS and shared["tier"] != template.tier:  # an unknown tier: the schema said so
        errors.append(f"tier: template '{template.name}' creates {template.tier} environments, not {shared['tier']}")
    clean["tier"] = template.tier
    cluster = template.cluster
    if data.get("cluster"):
        named = Cluster.objects.filter(name=data["cluster"]).first()
        if named is None:
            errors.append(f"cluster: no cluster named '{data['cluster']}'")
        elif cluster is not None and named.pk != cluster.pk:
            errors.append(f"cluster: template '{template.name}' places environments on '{cluster.name}'")
        cluster = named or cluster
    if cluster is None:
        cluster = default_cluster()
    if cluster is None:
        errors.append("cluster: no cluster is registered yet; an admin must add one first")
    clean["cluster"] = cluster
    namespace = data.get("namespace") or slug
    if display and not slug:
        problems = [f"name: '{display}' has no letters or digits to make a DNS label from (e.g. 'pr-1234')"]
    else:
        problems = guardrails.name_problems(slug, cluster=cluster, namespace=namespace)
    taken += [p for p in problems if "already" in p]
    errors += [p for p in problems if "already" not in p]
    if display and Environment.objects.filter(name=display).exclude(slug=slug).exists():
        taken.append(f"name: an environment named '{display}' already exists")
    clean["slug"], clean["namespace"] = slug, namespace
    parameters = dict(data.get("parameters") or {}) if isinstance(data.get("parameters"), dict) else data.get("parameters")
    ttl = data.get("ttl_hours")
    if isinstance(parameters, dict) and "ttl_hours" in parameters:
        ttl = parameters.pop("ttl_hours")
    clean["ttl_hours"] = guardrails.clean_ttl(template, ttl, errors)
    clean["parameters"] = guardrails.clean_parameters(template, parameters, errors)
    clean["team"], clean["description"] = about.get("team") or "", about.get("description") or ""
    return clean, errors, taken


def request_environment(user, data, request=None):
    """Create an environment from a template: `requested` (waiting for approval) when the template,
    the tier or an above-default quota needs it, else `provisioning` with its job queued."""
    template_name = data.get("template")
    template = EnvironmentTemplate.objects.filter(name=template_name).first() if template_name else None
    reason = request_refusal(user, template)
    if reason:
        deny("environment.create", user=user, request=request, environment=data.get("slug") or "", reason=reason)
    clean, errors, taken = check_request(user, data)
    if errors:
        raise InvalidInput(errors)
    if taken:
        raise Conflict(taken)
    template = clean["template"]
    approval = guardrails.approval_reason(template, clean["parameters"])
    env = Environment(
        name=clean["name"], slug=clean["slug"], tier=clean["tier"], cluster=clean["cluster"],
        namespace=clean["namespace"], team=clean["team"], description=clean["description"],
        owner=user if user.is_authenticated else None, template=template.name, ttl_hours=clean["ttl_hours"],
        parameters=clean["parameters"], guardrails=guardrails.resolve(template, clean["parameters"]),
        status=EnvironmentStatus.REQUESTED if approval else EnvironmentStatus.PROVISIONING,
    )
    if env.tier == "production":
        env.prevent_self_approval, env.required_approvals = True, 1
    if env.ttl_hours:
        env.expires_at = timezone.now() + timedelta(hours=env.ttl_hours)

    try:
        with transaction.atomic():
            env.save()
            detail = {"template": template.name, "parameters": clean["parameters"],
                      "quota": env.guardrails["quota"]}
            if approval:
                detail["approval"] = approval
            record("environment.create", actor=user, request=request, target=env,
                   changes=diff({}, env_snapshot(env)), detail=detail)
            if not approval:
                enqueue_job("environment.provision", target=env, environment=env, requested_by=user, request=request)
    except IntegrityError:
        raise Conflict(f"name: an environment '{clean['slug']}' was created at the same moment; "
                       "it already exists, choose another name") from None
    return env
