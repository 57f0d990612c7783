"""LimitRange defaulting and compute ResourceQuota accounting, as a real API server does them.

A real API server applies a namespace's LimitRange to each Pod as it is admitted (missing
limits take ``default``, missing requests take ``defaultRequest`` or else the limit; values
outside ``min``/``max`` are refused), and charges each Pod's requests and limits to the
namespace's ResourceQuota (``requests.cpu``, ``limits.memory``, ``cpu``, ``memory``...),
refusing the Pod that would exceed it, or that leaves a quota'd resource unspecified.

The sandbox has no ReplicaSets: it admits a Deployment's pod template times its replicas when
the Deployment is written, so the refusal reaches whoever applied it (with the API server's
wording), and presents the simulated Pods with their defaulted resources.
"""
from __future__ import annotations

import copy
from fractions import Fraction

from portal import quantity

from .errors import forbidden

COMPUTE = ("cpu", "memory")
# quota key -> (section of container resources, resource)
COMPUTE_KEYS = {
    "requests.cpu": ("requests", "cpu"), "requests.memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"), "limits.memory": ("limits", "memory"),
    "cpu": ("requests", "cpu"), "memory": ("requests", "memory"),
}


def container_items(limit_ranges):
    """The `type: Container` items of the namespace's LimitRanges."""
    items = []
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if item.get("type") == "Container":
                items.append(item)
    return items


def defaulted_container(container, items):
    """A copy of `container` with the LimitRange defaults applied to its resources."""
    container = copy.deepcopy(container)
    resources = container.setdefault("resources", {}) if items else container.get("resources") or {}
    for item in items:
        limits = resources.setdefault("limits", {})
        requests = resources.setdefault("requests", {})
        for name, value in (item.get("default") or {}).items():
            limits.setdefault(name, value)
        for name, value in (item.get("defaultRequest") or {}).items():
            requests.setdefault(name, value)
        for name, value in limits.items():  # a limit without a request: the request equals the limit
            requests.setdefault(name, value)
    for section in ("limits", "requests"):
        if section in resources and not resources[section]:
            del resources[section]
    return container


def defaulted_pod_spec(pod_spec, limit_ranges):
    items = container_items(limit_ranges)
    if not items:
        return pod_spec
    spec = dict(pod_spec)
    for field in ("initContainers", "containers"):
        if spec.get(field):
            spec[field] = [defaulted_container(c, items) for c in spec[field]]
    return spec


def limit_range_refusal(pod_spec, limit_ranges):
    """The API server's words for a container outside the LimitRange's min/max, or None."""
    for item in container_items(limit_ranges):
        for container in pod_spec.get("containers") or []:
            resources = container.get("resources") or {}
            for name, bound in (item.get("max") or {}).items():
                limit = (resources.get("limits") or {}).get(name)
                if limit is None:
                    return f"maximum {name} usage per Container is {bound}.  No limit is specified"
                if quantity.parse(limit) > quantity.parse(bound):
                    return f"maximum {name} usage per Container is {bound}, but limit is {limit}"
            for name, bound in (item.get("min") or {}).items():
                request = (resources.get("requests") or {}).get(name)
                if request is None:
                    return f"minimum {name} usage per Container is {bound}.  No request is specified"
                if quantity.parse(request) < quantity.parse(bound):
                    return f"minimum {name} usage per Container is {bound}, but request is {request}"
    return None


def pod_usage(pod_spec):
    """What one pod charges to a quota: {quota key: Fraction}, plus the keys it leaves unspecified."""
    usage, missing = {}, {}
    for key, (section, name) in COMPUTE_KEYS.items():
        total = Fraction(0)
        for container in pod_spec.get("containers") or []:
            value = ((container.get("resources") or {}).get(section) or {}).get(name)
            if value is None:
                missing.setdefault(key, []).append(container.get("name", "?"))
                continue
            total += quantity.parse(value)
        usage[key] = total
    return usage, missing


def deployment_usage(deployment, limit_ranges):
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    usage, missing = pod_usage(defaulted_pod_spec(spec, limit_ranges))
    replicas = (deployment.get("spec") or {}).get("replicas", 1)
    return {k: v * replicas for k, v in usage.items()}, missing


def admit_deployment(resource, name, new, others, quotas, limit_ranges):
    """Refuse (403, as the API server words it) a Deployment whose pods break the LimitRange or
    would take the namespace past a compute quota. `others` are the namespace's other Deployments."""
    spec = ((new.get("spec") or {}).get("template") or {}).get("spec") or {}
    defaulted = defaulted_pod_spec(spec, limit_ranges)
    refusal = limit_range_refusal(defaulted, limit_ranges)
    if refusal:
        raise forbidden(f'pods "{name}" is forbidden: {refusal}', resource, name)
    requested, missing = deployment_usage(new, limit_ranges)
    for quota in quotas:
        quota_name = quota["metadata"]["name"]
        hard = {k: v for k, v in ((quota.get("spec") or {}).get("hard") or {}).items() if k in COMPUTE_KEYS}
        if not hard:
            continue
        unspecified = sorted(k for k in hard if k in missing)
        if unspecified:
            raise forbidden(f'pods "{name}" is forbidden: failed quota: {quota_name}: must specify '
                            f"{','.join(unspecified)} for: {','.join(sorted(set(sum((missing[k] for k in unspecified), []))))}",
                            resource, name)
        used = namespace_usage(others, limit_ranges)
        for key, limit in hard.items():
            if used.get(key, 0) + requested.get(key, 0) > quantity.parse(limit):
                keys = sorted(hard)
                raise forbidden(
                    f'{resource.qualified} "{name}" is forbidden: exceeded quota: {quota_name}, '
                    f"requested: {','.join(f'{k}={quantity.format_like(k, requested.get(k, 0))}' for k in keys)}, "
                    f"used: {','.join(f'{k}={quantity.format_like(k, used.get(k, 0))}' for k in keys)}, "
                    f"limited: {','.join(f'{k}={hard[k]}' for k in keys)}",
                    resource, name)


def namespace_usage(deployments, limit_ranges):
    used = {}
    for deployment in deployments:
        usage, _ = deployment_usage(deployment, limit_ranges)
        for key, value in usage.items():
            used[key] = used.get(key, 0) + value
    return used


def quota_used(hard, deployments, limit_ranges):
    """status.used of the compute keys of a quota."""
    used = namespace_usage(deployments, limit_ranges)
    return {key: quantity.format_like(key, used.get(key, 0)) for key in hard if key in COMPUTE_KEYS}
