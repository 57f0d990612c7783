"""The rules of self-service environments, in one place: name rules, parameter and TTL bounds,
the quota an environment gets, and whether its creation needs approval.

The create form (as the user types), the API and the provisioning job all call these functions;
none of them holds a rule of its own. Every refusal names the field and the bound it broke.
"""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from deployments.models import Service
from portal import quantity
from portal.accounts import policies as roles
from portal.validation import DNS_LABEL, RESERVED_NAMES

from .choices import EnvironmentStatus
from .models import Cluster, Environment, EnvironmentTemplate

PROTECTED_TIERS = ("staging", "production")
NETWORK_POLICIES = ("default-deny", "none")
LIMIT_KINDS = ("default", "default_request", "max", "min")
RESOURCES = ("cpu", "memory")
# A requester's parameter may name a quota key directly ("pods", "limits.cpu") or use these short
# names. Setting `cpu` (`memory`) sets requests.cpu (requests.memory) and moves limits.cpu
# (limits.memory) with it, keeping the template's ratio of limits to requests.
PARAMETER_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}
MAX_TTL_HOURS = 24 * 90


def quota_key(parameter):
    return PARAMETER_ALIASES.get(parameter, parameter)


def _fmt(key, amount):
    return quantity.format_like(key, amount)


# ---------------------------------------------------------------- names

def name_problems(slug, *, cluster=None, namespace=None, exclude_pk=None, field="name"):
    """Why `slug` cannot name a new environment (a DNS label, not reserved, free), [] when it can.
    A name that is taken says "already" (the API answers 409 for those, 400 for the rest). `field`:
    the input the slug came from (self-service derives it from the name; the admin form has a slug).

    Deleted and rejected environments keep their name: they stay in history and audit under it,
    so a new environment needs a new name (CI: add the run number to the pull request's)."""

    problems = []
    if not isinstance(slug, str) or not slug:
        return [f"{field}: required"]
    if len(slug) > 63 or not DNS_LABEL.match(slug):
        return [f"{field}: '{slug}' is not a valid DNS label; use lowercase letters, digits and '-', starting and "
                "ending with a letter or digit, at most 63 characters (e.g. 'pr-1234')"]
    if slug in RESERVED_NAMES:
        return [f"{field}: '{slug}' is reserved; choose another {field}"]
    others = Environment.objects.all()
    if exclude_pk:
        others = others.exclude(pk=exclude_pk)
    holder = others.filter(slug=slug).only("status").first()
    if holder is not None and holder.status in GONE:
        problems.append(f"{field}: '{slug}' already belonged to an environment that was {holder.status}; names stay "
                        f"with their history, choose another {field}")
    elif holder is not None:
        problems.append(f"{field}: an environment '{slug}' already exists; choose another {field}")
    namespace = namespace or slug
    if namespace == "default" or namespace.startswith("kube-"):
        problems.append(f"namespace: '{namespace}' belongs to the cluster itself; choose another")
    elif cluster is not None and holder is None and others.filter(cluster=cluster, namespace=namespace).exists():
        problems.append(f"namespace: '{namespace}' is already used on cluster '{cluster}'")
    return problems


GONE = (EnvironmentStatus.DELETED, EnvironmentStatus.REJECTED)


# ---------------------------------------------------------------- parameters and TTL

def parameter_bounds(template):
    """Each parameter a requester may set: {name: {"key", "min", "max", "default"}} (as text)."""
    bounds = {}
    for name, spec in (template.parameters or {}).items():
        key = quota_key(name)
        default = (template.quota or {}).get(key, spec.get("default", spec.get("min")))
        bounds[name] = {"key": key, "min": spec.get("min"), "max": spec.get("max"), "default": str(default)}
    return bounds


def ttl_bounds(template):
    """(default hours or None, maximum hours): the maximum is the template's, or 90 days."""
    if template is None:
        return None, MAX_TTL_HOURS
    return template.ttl_hours, template.max_ttl_hours or (template.ttl_hours if template.ttl_hours else MAX_TTL_HOURS)


def clean_ttl(template, value, errors):
    """The TTL in hours a request ends up with (the template's default when not given)."""
    default, maximum = ttl_bounds(template)
    if value in (None, ""):
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        hours = int(value)
    except (TypeError, ValueError):
        errors.append(f"ttl_hours: '{value}' must be a whole number of hours")
        return None
    if hours < 1:
        errors.append("ttl_hours: must be at least 1 hour")
        return None
    if hours > maximum:
        where = f"template '{template.name}'" if template is not None else "Gantry"
        errors.append(f"ttl_hours: {hours} is above the maximum of {maximum} hours set by {where}")
        return None
    return hours


def clean_parameters(template, raw, errors):
    """The requester's parameters, checked against the template's bounds: {name: quantity text}."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        errors.append("parameters: must be an object such as {\"cpu\": \"4\"}")
        return {}
    bounds = parameter_bounds(template)
    clean = {}
    for name, value in raw.items():
        if name == "ttl_hours":
            continue  # handled by clean_ttl
        if name not in bounds:
            allowed = ", ".join(sorted(bounds) + ["ttl_hours"])
            errors.append(f"parameters.{name}: template '{template.name}' does not let you set it (you may set: {allowed})")
            continue
        try:
            amount = quantity.parse(value)
        except quantity.QuantityError as exc:
            errors.append(f"parameters.{name}: {exc}")
            continue
        low, high = bounds[name]["min"], bounds[name]["max"]
        if low is not None and amount < quantity.parse(low):
            errors.append(f"parameters.{name}: {value} is below the minimum of {low} set by template '{template.name}'")
            continue
        if high is not None and amount > quantity.parse(high):
            errors.append(f"parameters.{name}: {value} is above the maximum of {high} set by template '{template.name}'")
            continue
        clean[name] = str(value)
    return clean


def effective_quota(template, parameters):
    """The ResourceQuota spec.hard an environment gets: the template's, with the parameters applied."""
    quota = {k: str(v) for k, v in (template.quota or {}).items()}
    for name, value in (parameters or {}).items():
        key = quota_key(name)
        old = quota.get(key)
        quota[key] = str(value)
        if key.startswith("requests."):
            limit_key = "limits." + key.split(".", 1)[1]
            if limit_key in quota and old and quantity.parse(old):
                ratio = quantity.parse(template.quota[limit_key]) / quantity.parse(old)
                quota[limit_key] = _fmt(limit_key, quantity.parse(value) * ratio)
    return quota


def above_default(template, parameters):
    """The parameters asking for more than the template's default, as readable words."""
    found = []
    for name, value in (parameters or {}).items():
        key = quota_key(name)
        default = (template.quota or {}).get(key)
        if default is not None and quantity.parse(value) > quantity.parse(default):
            found.append(f"{key} {value} (default {default})")
    return found


def approval_reason(template, parameters):
    """Why creating an environment from `template` with `parameters` needs approval, or None."""
    if template is None:
        return None
    if template.requires_approval:
        return f"template '{template.name}' requires approval"
    if template.tier in PROTECTED_TIERS:
        return f"{template.tier} environments require approval"
    more = above_default(template, parameters)
    if more:
        return "it asks for more than the template's default quota: " + ", ".join(more)
    return None


def resolve(template, parameters):
    """The guardrails snapshot stored on the environment and applied by the provisioning job."""
    return {
        "template": template.name,
        "quota": effective_quota(template, parameters),
        "limit_range": template.limit_range or {},
        "network_policy": template.network_policy,
        "ingress_namespace": template.ingress_namespace,
        "services": list(template.services or []),
        "max_ttl_hours": ttl_bounds(template)[1],
        "required_approvals": max(1, template.required_approvals),
    }


# ---------------------------------------------------------------- expiry

def extension_refusal(env, hours, now=None):
    """Why `env` cannot be extended by `hours` (None when it can): only one with a TTL, and never
    past the template's maximum time to live counted from now."""
    now = now or timezone.now()
    if env.expires_at is None:
        return f"environment '{env.slug}' has no time to live; there is nothing to extend"
    if env.status not in (EnvironmentStatus.READY, EnvironmentStatus.PROVISIONING, EnvironmentStatus.FAILED):
        return f"environment '{env.slug}' is {env.status}; only a live environment can be extended"
    maximum = (env.guardrails or {}).get("max_ttl_hours") or MAX_TTL_HOURS
    new_expiry = max(env.expires_at, now) + timedelta(hours=hours)
    latest = now + timedelta(hours=maximum)
    if new_expiry > latest:
        return (f"hours: extending by {hours} h would expire at {new_expiry:%Y-%m-%d %H:%M %Z}, past the maximum of "
                f"{maximum} h from now ({latest:%Y-%m-%d %H:%M %Z})")
    return None


def new_expiry(env, hours, now=None):
    now = now or timezone.now()
    return max(env.expires_at, now) + timedelta(hours=hours)


# ---------------------------------------------------------------- templates themselves

def clean_quantity_map(value, field, errors, keys=None):
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        errors.append(f"{field}: must be an object of quantities")
        return {}
    clean = {}
    for key, amount in value.items():
        if keys is not None and key not in keys:
            errors.append(f"{field}.{key}: unknown; use {', '.join(keys)}")
            continue
        if not quantity.is_quantity(amount):
            errors.append(f"{field}.{key}: '{amount}' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
            continue
        clean[key] = str(amount)
    return clean


def clean_limit_range(value, errors):
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        errors.append("limit_range: must be an object with default, default_request, max, min")
        return {}
    clean = {}
    for kind, amounts in value.items():
        if kind not in LIMIT_KINDS:
            errors.append(f"limit_range.{kind}: unknown; use {', '.join(LIMIT_KINDS)}")
            continue
        clean[kind] = clean_quantity_map(amounts, f"limit_range.{kind}", errors, keys=RESOURCES)
    for resource in RESOURCES:  # min <= default_request <= default <= max
        chain = [(k, clean.get(k, {}).get(resource)) for k in ("min", "default_request", "default", "max")]
        chain = [(k, v) for k, v in chain if v is not None]
        for (low_kind, low), (high_kind, high) in zip(chain, chain[1:], strict=False):
            if quantity.parse(low) > quantity.parse(high):
                errors.append(f"limit_range: {low_kind}.{resource} {low} is above {high_kind}.{resource} {high}")
    return clean


def clean_parameter_ranges(raw, errors):
    """A template's parameters: {name: {min, max}} quantities, min at most max."""
    clean = {}
    raw = raw or {}
    if not isinstance(raw, dict):
        errors.append("parameters: must be an object such as {\"cpu\": {\"min\": \"1\", \"max\": \"8\"}}")
        return clean
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            errors.append(f"parameters.{name}: must be an object with min and max")
            continue
        bounds = clean_quantity_map({k: v for k, v in spec.items() if k in ("min", "max")}, f"parameters.{name}", errors)
        unknown = set(spec) - {"min", "max"}
        if unknown:
            errors.append(f"parameters.{name}: unknown field(s) {', '.join(sorted(unknown))}; use min and max")
        if "min" not in bounds or "max" not in bounds:
            errors.append(f"parameters.{name}: give both min and max")
            continue
        if quantity.parse(bounds["min"]) > quantity.parse(bounds["max"]):
            errors.append(f"parameters.{name}: min {bounds['min']} is above max {bounds['max']}")
            continue
        clean[name] = bounds
    return clean


def template_services(items, errors):
    """The catalog services an environment made from a template gets: [{service, from_environment}]."""
    items = items or []
    if not isinstance(items, list):
        errors.append("services: must be a list of {service, from_environment}")
        return []
    clean = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("service") or not item.get("from_environment"):
            errors.append(f"services[{index}]: needs service and from_environment")
            continue
        clean.append({"service": item["service"], "from_environment": item["from_environment"]})
    return clean


def template_problems(clean, instance=None):
    """What a template's declared fields (environments.schemas.TemplateCreate/TemplateChange) cannot say
    alone: the name is free, the cluster and services exist, the time to live is within its maximum,
    and each parameter's range holds the quota's value. Sets `clean["cluster"]` to the Cluster."""

    errors = []
    if "name" in clean and EnvironmentTemplate.objects.filter(name=clean["name"]).exclude(
            pk=getattr(instance, "pk", None)).exists():
        errors.append(f"name: a template named '{clean['name']}' already exists")
    if clean.get("cluster") not in (None, ""):
        name, clean["cluster"] = clean["cluster"], Cluster.objects.filter(name=clean["cluster"]).first()
        if clean["cluster"] is None:
            errors.append(f"cluster: no cluster named '{name}'")
    elif "cluster" in clean:
        clean["cluster"] = None
    ttl = clean.get("ttl_hours", getattr(instance, "ttl_hours", None))
    max_ttl = clean.get("max_ttl_hours", getattr(instance, "max_ttl_hours", None))
    if ttl and max_ttl and ttl > max_ttl:
        errors.append(f"ttl_hours: {ttl} is above max_ttl_hours {max_ttl}")
    quota = clean.get("quota", getattr(instance, "quota", {}) or {})
    for name, bounds in (clean.get("parameters") or {}).items():
        default = quota.get(quota_key(name))
        if default is None:
            errors.append(f"parameters.{name}: the quota has no {quota_key(name)} to start from; add it to quota")
        elif not quantity.parse(bounds["min"]) <= quantity.parse(default) <= quantity.parse(bounds["max"]):
            errors.append(f"parameters.{name}: the quota's {quota_key(name)} {default} is outside "
                          f"{bounds['min']}..{bounds['max']}")
    for index, item in enumerate(clean.get("services") or []):
        if not Service.objects.filter(name=item["service"]).exists():
            errors.append(f"services[{index}].service: no service named '{item['service']}'")
    return errors


# ---------------------------------------------------------------- deletion

def deletion_refusal(user, env):
    """Why `user` may not delete `env` (None when they may): the owner of a preview or development
    environment, otherwise an admin."""

    if roles.is_admin(user):  # a global admin: an admin of one environment does not remove it
        return None
    mine = env.owner_id == user.pk and roles.has_any_role(user)
    if mine and (env.tier not in PROTECTED_TIERS or env.status == EnvironmentStatus.REQUESTED):
        return None  # (withdrawing one's own request is always allowed)
    if env.tier in PROTECTED_TIERS:
        return f"only an admin can delete a {env.tier} environment (and its deletion needs approval)"
    return "only the environment's owner or an admin can delete it"


def deletion_needs_approval(env):
    """Deleting a staging or production environment needs approval (not a request never granted)."""
    return env.tier in PROTECTED_TIERS and env.status != EnvironmentStatus.REQUESTED
