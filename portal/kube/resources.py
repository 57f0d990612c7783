"""The kinds Gantry manages and their REST paths."""
from __future__ import annotations

from urllib.parse import quote

from .errors import KubeError

# apiVersion, kind -> (plural, namespaced). The kinds Gantry reads and writes; a real cluster
# serves many more, and adding one here is all it takes to manage it.
KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}


def _resource(api_version, kind):
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        known = ", ".join(f"{k} ({v})" for v, k in sorted(KINDS))
        raise KubeError(f"Gantry does not manage {kind} objects of apiVersion {api_version}; it knows {known}",
                        reason="UnknownKind") from None


def resource_path(api_version, kind, namespace="", name=""):
    """The REST path of a collection (no ``name``) or of one object."""
    plural, namespaced = _resource(api_version, kind)
    path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    if namespaced:
        if not namespace:
            raise KubeError(f"{kind} {name or ''} needs a namespace".replace("  ", " "), reason="BadManifest")
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name, safe='')}"
    return path
