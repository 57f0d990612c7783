"""Where a Deployment's rollout stands, and why it is stuck when it is (the pods' container problems)."""
from __future__ import annotations

from .clients import _request
from .objects import list_objects
from .resources import resource_path

_IMAGE_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_START_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


def _label_selector(selector):
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _pod_problem(pods):
    """The first container problem among the pods, as a sentence, or None."""
    for pod in pods:
        statuses = (pod.get("status") or {}).get("initContainerStatuses", []) + (pod.get("status") or {}).get("containerStatuses", [])
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason, message = waiting.get("reason"), waiting.get("message") or ""
            if reason in _IMAGE_PULL_REASONS:
                return f"image pull error: {message or reason} (container {container.get('name')}, image {container.get('image')})"
            if reason == "CrashLoopBackOff":
                return f"container {container.get('name')} keeps crashing ({container.get('restartCount', 0)} restarts)"
            if reason in _START_REASONS:
                return f"container {container.get('name')} cannot start: {message or reason}"
    return None


def selector_matches(selector, labels):
    """Whether a ``LabelSelector`` (matchLabels, matchExpressions) selects these labels, as the API server decides."""
    labels = labels or {}
    selector = selector or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return False  # an empty selector on a workload selects nothing
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if (operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and key in labels and labels[key] in values) \
                or (operator == "Exists" and key not in labels) or (operator == "DoesNotExist" and key in labels):
            return False
    return True


def pod_restarts(pods):
    """Container restarts of these pods (init containers included), as ``kubectl get pods`` adds them up."""
    total = 0
    for pod in pods:
        status = pod.get("status") or {}
        for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            total += int(container.get("restartCount") or 0)
    return total


def summarize_deployment(deployment, pods):
    """Where a Deployment object's rollout stands, and why it is stuck if it is (no request).

    ``pods`` are the namespace's pods (or any superset of the Deployment's); those its selector
    picks explain a stuck rollout and give the restart count. ``done`` follows ``kubectl rollout
    status``: the controller has seen the latest spec and every replica is updated, ready and
    available.
    """
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    own = [pod for pod in pods if selector_matches(spec.get("selector"), (pod.get("metadata") or {}).get("labels"))]
    summary = {
        "desired": spec.get("replicas", 1),
        "updated": status.get("updatedReplicas", 0),
        "ready": status.get("readyReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "observed_generation": status.get("observedGeneration", 0),
        "generation": (deployment.get("metadata") or {}).get("generation", 0),
        "progressing_reason": progressing.get("reason"),
        "restarts": pod_restarts(own),
    }
    summary["done"] = (
        summary["observed_generation"] >= summary["generation"]
        and summary["updated"] == summary["desired"]
        and status.get("replicas", 0) == summary["desired"]
        and summary["ready"] == summary["desired"]
        and summary["available"] == summary["desired"]
    )
    failure = None
    if not summary["done"]:
        problem = _pod_problem(own)
        replica_failure = conditions.get("ReplicaFailure") or {}
        if progressing.get("reason") == "ProgressDeadlineExceeded" and summary["observed_generation"] >= summary["generation"]:
            failure = "rollout deadline exceeded: " + (progressing.get("message") or "no progress within progressDeadlineSeconds")
            if problem:
                failure += f"; {problem}"
        elif problem:
            failure = problem
        elif replica_failure.get("status") == "True":
            failure = f"cannot create pods: {replica_failure.get('message') or replica_failure.get('reason')}"
    summary["failure"] = failure
    return summary


def deployment_status(cluster, namespace, name):
    """``summarize_deployment`` of one Deployment read now (its pods are listed only when they matter)."""
    deployment = _request(cluster, "GET", resource_path("apps/v1", "Deployment", namespace, name))
    summary = summarize_deployment(deployment, [])
    if not summary["done"]:
        selector = _label_selector((deployment.get("spec") or {}).get("selector") or {})
        if selector:
            summary = summarize_deployment(deployment, list_objects(cluster, "v1", "Pod", namespace, selector))
    return summary
