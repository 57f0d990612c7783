"""What the provisioning job applies to a namespace, and the job's steps.

The builders turn an environment (and the guardrails resolved from its template when it was
requested) into plain manifests: the Namespace with its labels, a ResourceQuota, a LimitRange,
a default-deny NetworkPolicy plus one letting in the ingress controller's namespace (and the
namespace's own pods), and a RoleBinding giving the owning team the `edit` role. Each is written
with server-side apply through portal.kube, so running the job again (a retry after a failure
or after a worker died) converges on the same objects instead of failing on "already exists".
"""
from __future__ import annotations

import re

from django.db import transaction

from deployments import actions
from deployments.choices import DeploymentState as S
from deployments.models import Deployment
from portal import kube
from portal.audit.services import record
from portal.errors import GantryError

GANTRY_LABELS = {"app.kubernetes.io/managed-by": "gantry"}
QUOTA_NAME = "gantry-quota"
LIMITS_NAME = "gantry-limits"
DENY_NAME = "gantry-default-deny"
ALLOW_NAME = "gantry-allow-ingress"
BINDING_NAME = "gantry-team"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text):
    """A label value from free text (at most 63 characters, alphanumeric at both ends)."""
    value = _LABEL_VALUE.sub("-", str(text or ""))[:63].strip("-_.")
    return value


def namespace_labels(env):
    labels = dict(GANTRY_LABELS)
    labels["gantry.dev/environment"] = env.slug
    labels["gantry.dev/tier"] = env.tier
    if env.template:
        labels["gantry.dev/template"] = label_value(env.template)
    owner = label_value(env.owner.get_username()) if env.owner_id else ""
    if owner:
        labels["gantry.dev/owner"] = owner
    if env.team:
        labels["gantry.dev/team"] = label_value(env.team)
    return labels


def _meta(env, name):
    return {"name": name, "namespace": env.namespace, "labels": dict(GANTRY_LABELS)}


def namespace_manifest(env):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.namespace, "labels": namespace_labels(env)}}


def quota_manifest(env):
    hard = (env.guardrails or {}).get("quota") or {}
    if not hard:
        return None
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta(env, QUOTA_NAME),
            "spec": {"hard": dict(hard)}}


_LIMIT_KEYS = {"default": "default", "default_request": "defaultRequest", "max": "max", "min": "min"}


def limit_range_manifest(env):
    limits = (env.guardrails or {}).get("limit_range") or {}
    item = {"type": "Container"}
    for ours, theirs in _LIMIT_KEYS.items():
        if limits.get(ours):
            item[theirs] = dict(limits[ours])
    if len(item) == 1:
        return None
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta(env, LIMITS_NAME), "spec": {"limits": [item]}}


def network_policy_manifests(env):
    guard = env.guardrails or {}
    if guard.get("network_policy", "none") != "default-deny":
        return []
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(env, DENY_NAME),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    peers = [{"podSelector": {}}]  # the environment's own pods talk to each other
    if guard.get("ingress_namespace"):
        peers.append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": guard["ingress_namespace"]}}})
    allow = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(env, ALLOW_NAME),
             "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": peers}]}}
    return [deny, allow]


def role_binding_manifest(env):
    """The owning team (a group of the cluster's identity provider) or else the owner gets `edit`."""
    if env.team:
        subject = {"kind": "Group", "name": env.team, "apiGroup": "rbac.authorization.k8s.io"}
    elif env.owner_id:
        subject = {"kind": "User", "name": env.owner.get_username(), "apiGroup": "rbac.authorization.k8s.io"}
    else:
        return None
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(env, BINDING_NAME),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [subject]}


def namespace_resources(env):
    """Everything applied to the namespace, in order (the Namespace first)."""
    manifests = [namespace_manifest(env), quota_manifest(env), limit_range_manifest(env),
                 *network_policy_manifests(env), role_binding_manifest(env)]
    return [m for m in manifests if m is not None]


def describe(manifest):
    return f"{manifest['kind']} {manifest['metadata']['name']}"


class ProvisioningFailed(Exception):
    """A resource the cluster refused; the message names it and says why."""


def check_namespace_owner(env):
    """Gantry never adopts a namespace it did not create: refuse one labelled for someone else."""
    existing = kube.get(env.cluster, "v1", "Namespace", "", env.namespace)
    owner = ((existing or {}).get("metadata", {}).get("labels") or {}).get("gantry.dev/environment")
    if existing is not None and owner != env.slug:
        raise ProvisioningFailed(
            f"namespace {env.namespace} already exists on {env.cluster.name} and is not Gantry's environment "
            f"{env.slug} ({'it belongs to ' + owner if owner else 'no gantry.dev/environment label'}); choose another "
            f"namespace, or label it gantry.dev/environment={env.slug} to adopt it")


def apply_namespace_resources(env, log):
    """Apply each resource (server-side apply), audit each; raise ProvisioningFailed naming the one
    the cluster refused. Returns the descriptions of what was applied."""
    applied = []
    try:
        check_namespace_owner(env)
    except (kube.KubeError, ValueError, OSError) as exc:
        raise ProvisioningFailed(f"could not read namespace {env.namespace}: {exc}") from exc
    for manifest in namespace_resources(env):
        what = describe(manifest)
        log(f"applying {what}")
        try:
            kube.apply(env.cluster, manifest)
        except (kube.KubeError, ValueError, OSError) as exc:
            with transaction.atomic():
                record("environment.resource_apply", actor_name="gantry-worker", target=env, outcome="failure",
                       detail={"resource": what, "error": str(exc)})
            raise ProvisioningFailed(f"could not apply {what} in namespace {env.namespace}: {exc}") from exc
        with transaction.atomic():
            record("environment.resource_apply", actor_name="gantry-worker", target=env,
                   detail={"resource": what, "kind": manifest["kind"], "name": manifest["metadata"]["name"]})
        applied.append(what)
    return applied


def deploy_template_services(env, log):
    """Request a deployment of each template service: the release that last succeeded in its
    `from_environment`, through the normal deployment path (approvals, windows, the deploy job).
    A retry does not request the same release twice. Returns the deployments (new or existing)."""

    found = []
    for item in (env.guardrails or {}).get("services") or []:
        service, source = item.get("service"), item.get("from_environment")
        last = (Deployment.objects.filter(service__name=service, environment__slug=source, kind="deploy",
                                          state=S.SUCCEEDED).select_related("release").order_by("-finished_at", "-pk")
                .first())
        if last is None:
            log.warning(f"service {service}: no release has succeeded in {source} yet; nothing to deploy")
            continue
        existing = Deployment.objects.filter(environment=env, release=last.release).exclude(
            state__in=[S.FAILED, S.CANCELLED, S.REJECTED]).first()
        if existing is not None:
            log(f"service {service}: {last.release} already requested (deployment #{existing.pk}, {existing.state})")
            found.append(existing)
            continue
        if env.owner is None:
            log.warning(f"service {service}: the environment has no owner to request the deployment")
            continue
        try:
            deployment = actions.request_deployment(env.owner, {"release": last.release.pk, "environment": env.slug})
        except GantryError as exc:
            log.warning(f"service {service}: the deployment of {last.release} was refused: {exc}")
            continue
        log(f"service {service}: deploying {last.release} (from {source}) as deployment #{deployment.pk}")
        found.append(deployment)
    return found
