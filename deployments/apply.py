"""Applying a deployment's manifests to its cluster: rendering them into checked, namespaced
objects, the order of server-side apply, and the sentence a user reads when the cluster refuses.

Used by `rollout` (the deploy job) and `preview` (the dry run on the approval page).
"""
from portal import kube

from . import manifests, rendering
from .choices import DEPLOY

# Dependency order of server-side apply: what pods need (config, accounts, quotas, policies)
# first, then workloads, then what points at them.
# Dependency order of server-side apply: what pods need (config, accounts, quotas, policies)
# first, then workloads, then what points at them.
APPLY_ORDER = {
    "ConfigMap": 0, "Secret": 0, "ServiceAccount": 0, "ResourceQuota": 0, "LimitRange": 0, "NetworkPolicy": 0,
    "Role": 0, "RoleBinding": 0, "PersistentVolumeClaim": 0,
    "Deployment": 1, "StatefulSet": 1, "DaemonSet": 1, "Job": 1, "CronJob": 1, "Pod": 1,
    "Service": 2,
}
LATER = 3  # HorizontalPodAutoscaler, Ingress, PodDisruptionBudget...


class DeployFailed(Exception):
    """A deployment failed for a reason the user can act on; ``str()`` says what to do."""


class Run:
    """What one execution works with."""

    def __init__(self, deployment, log):
        self.deployment = deployment
        self.environment = deployment.environment
        self.service = deployment.service
        self.cluster = self.environment.cluster
        self.namespace = self.environment.namespace
        self.log = log


def sentence(exc, deployment):
    if isinstance(exc, manifests.ManifestError):
        return (f"the manifests of {deployment.service.name} for {deployment.environment.slug} are not valid: {exc}; "
                "fix the service's manifest and request the deployment again")
    if isinstance(exc, kube.KubeError):
        return kube_sentence(exc, deployment.environment.namespace)
    return str(exc)


def kube_sentence(exc, namespace):
    if exc.status == 403 and "exceeded quota" in (exc.api_message or ""):
        return (f"quota exceeded: {exc.api_message}; raise the ResourceQuota of namespace {namespace} "
                "or ask for fewer resources")
    return str(exc)


def manifest_text(deployment, color=""):
    """The manifests this deployment runs, rendered for its environment.

    A rollback re-applies what ran before: the service's template when it has not changed since
    (so ``${color}`` gets the right colour), else the manifests recorded when that release ran.
    """
    service, release, env = deployment.service, deployment.release, deployment.environment
    if deployment.kind == DEPLOY or rendering.manifest_hash(service, release, env) == deployment.manifest_hash:
        return rendering.render_text(service, release, env, color=color)
    return deployment.rendered_manifest


def documents_of(run, color=""):
    """Rendered, checked (schema, policy, the environment's tier) and namespaced objects."""
    documents = manifests.check_rendered(manifest_text(run.deployment, color))
    problems = manifests.environment_policy_problems(documents, run.environment)
    if problems:
        raise DeployFailed("; ".join(problems))
    for document in documents:
        if kube.KINDS[(document["apiVersion"], document["kind"])][1]:
            document["metadata"]["namespace"] = run.namespace
    return documents


def apply_order(documents):
    return sorted(documents, key=lambda d: APPLY_ORDER.get(d.get("kind"), LATER))  # stable: manifest order within a rank


def apply_object(run, obj, dry_run=False):
    kind, name = obj["kind"], obj["metadata"]["name"]
    try:
        applied = kube.apply(run.cluster, obj, dry_run=dry_run)
    except kube.KubeError as exc:
        where = f"applying {kind} {name} in namespace {run.namespace}"
        raise DeployFailed(f"{kube_sentence(exc, run.namespace)} ({where})") from None
    if not dry_run:
        run.log(f"applied {kind} {run.namespace}/{name}")
    return applied
