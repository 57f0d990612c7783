"""The resource types the sandbox serves, and how each is defaulted and checked on write.

The checks are the handful a real API server makes that Gantry would trip over (a Deployment
without a selector, a Service without ports, a name with capitals); the sandbox is not a
schema validator, manifests are checked against the real schemas elsewhere.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass

from .errors import invalid


@dataclass(frozen=True, eq=False)  # one instance per resource (RESOURCES): identity is equality, and fast
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self):
        """How the API names the resource in messages: ``deployments.apps``, ``services``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False),
    Resource("", "v1", "services", "Service"),
    Resource("", "v1", "configmaps", "ConfigMap"),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    Resource("", "v1", "resourcequotas", "ResourceQuota"),
    Resource("", "v1", "limitranges", "LimitRange"),
    Resource("", "v1", "pods", "Pod"),
    Resource("apps", "v1", "deployments", "Deployment"),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress"),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
]

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
NAMESPACES = BY_PATH[("", "v1", "namespaces")]
DEPLOYMENTS = BY_PATH[("apps", "v1", "deployments")]
PODS = BY_PATH[("", "v1", "pods")]
SERVICES = BY_PATH[("", "v1", "services")]
RESOURCE_QUOTAS = BY_PATH[("", "v1", "resourcequotas")]
LIMIT_RANGES = BY_PATH[("", "v1", "limitranges")]

# Kinds without a spec generation of their own, or without a status that the server owns.
NO_GENERATION = {"Namespace", "Service", "ConfigMap", "Secret", "ServiceAccount", "Pod", "RoleBinding"}
NO_STATUS = {"ConfigMap", "Secret", "ServiceAccount", "LimitRange", "RoleBinding"}

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL_KINDS = {"Namespace", "Service"}


def check_name(resource, name):
    if not name:
        raise invalid("metadata.name: Required value: name or generateName is required", resource, name)
    if resource.kind in _DNS_LABEL_KINDS:
        if len(name) > 63 or not _LABEL.match(name):
            raise invalid(
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                "alphanumeric characters or '-', and must start and end with an alphanumeric character",
                resource, name, field="metadata.name",
            )
    elif len(name) > 253 or not _SUBDOMAIN.match(name):
        raise invalid(
            f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            resource, name, field="metadata.name",
        )


def check_metadata(resource, obj):
    name = obj["metadata"].get("name")
    for field in ("labels", "annotations"):
        values = obj["metadata"].get(field)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise invalid(f"metadata.{field}: Invalid value: values must be strings", resource, name, field=f"metadata.{field}")


def prepare(resource, obj, old, allocate_ip):  # noqa: C901  (one flat table of per-kind API server defaults, as in Kubernetes)
    """Apply the API server's defaults to ``obj`` and refuse what a real server would refuse."""
    name = obj["metadata"]["name"]
    spec = obj.get("spec")
    if resource.kind == "Namespace":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif resource.kind == "Deployment":
        _prepare_deployment(resource, obj, old)
    elif resource.kind == "Service":
        _prepare_service(resource, obj, old, allocate_ip)
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif resource.kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) if string_data else obj.get("data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif resource.kind == "LimitRange":
        if not (spec or {}).get("limits"):
            raise invalid("spec.limits: Required value", resource, name, field="spec.limits")
    elif resource.kind == "HorizontalPodAutoscaler":
        spec = spec or {}
        if not spec.get("scaleTargetRef", {}).get("name"):
            raise invalid("spec.scaleTargetRef.name: Required value", resource, name, field="spec.scaleTargetRef.name")
        if not isinstance(spec.get("maxReplicas"), int) or spec["maxReplicas"] < 1:
            raise invalid("spec.maxReplicas: Invalid value: must be greater than or equal to 1", resource, name, field="spec.maxReplicas")
        obj.setdefault("status", {}).setdefault("desiredReplicas", 0)  # not omitempty in the API, required by clients
    elif resource.kind == "NetworkPolicy":
        obj.setdefault("spec", {}).setdefault("podSelector", {})
        obj["spec"].setdefault("policyTypes", ["Ingress"] + (["Egress"] if obj["spec"].get("egress") else []))
    elif resource.kind == "RoleBinding":
        ref = obj.get("roleRef") or {}
        if not ref.get("kind") or not ref.get("name"):
            raise invalid("roleRef.name: Required value", resource, name, field="roleRef")
        if old is not None and old.get("roleRef") != ref:
            raise invalid("roleRef: Invalid value: cannot change roleRef", resource, name, field="roleRef")
        for index, subject in enumerate(obj.get("subjects") or []):
            if not subject.get("kind") or not subject.get("name"):
                raise invalid(f"subjects[{index}].name: Required value", resource, name, field=f"subjects[{index}]")
    elif resource.kind == "Pod" and not (spec or {}).get("containers"):
        raise invalid("spec.containers: Required value", resource, name, field="spec.containers")


def _prepare_deployment(resource, obj, old):
    name = obj["metadata"]["name"]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid("spec: Required value", resource, name, field="spec")
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        raise invalid("spec.selector: Required value", resource, name, field="spec.selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        raise invalid(
            f"spec.template.metadata.labels: Invalid value: {labels!r}: `selector` does not match template `labels`",
            resource, name, field="spec.template.metadata.labels",
        )
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        raise invalid("spec.template.spec.containers: Required value", resource, name, field="spec.template.spec.containers")
    for index, container in enumerate(containers):
        for field in ("name", "image"):
            if not container.get(field):
                path = f"spec.template.spec.containers[{index}].{field}"
                raise invalid(f"{path}: Required value", resource, name, field=path)
    if old is not None and old["spec"].get("selector") != selector:
        raise invalid(
            f"spec.selector: Invalid value: {selector!r}: field is immutable", resource, name, field="spec.selector"
        )
    spec.setdefault("replicas", 1)
    spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    if not isinstance(spec["replicas"], int) or spec["replicas"] < 0:
        raise invalid("spec.replicas: Invalid value: must be greater than or equal to 0", resource, name, field="spec.replicas")


def _prepare_service(resource, obj, old, allocate_ip):
    name = obj["metadata"]["name"]
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    ports = spec.get("ports") or []
    if spec["type"] != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
        raise invalid("spec.ports: Required value", resource, name, field="spec.ports")
    for index, port in enumerate(ports):
        if not isinstance(port.get("port"), int):
            raise invalid(f"spec.ports[{index}].port: Required value", resource, name, field=f"spec.ports[{index}].port")
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    if spec["type"] != "ExternalName":
        live_ip = (old or {}).get("spec", {}).get("clusterIP")
        if live_ip and spec.get("clusterIP") not in (None, "", live_ip):
            raise invalid("spec.clusterIP: Invalid value: field is immutable", resource, name, field="spec.clusterIP")
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = live_ip or spec.get("clusterIP") or allocate_ip()
            try:
                ipaddress.ip_address(spec["clusterIP"])
            except ValueError:
                raise invalid(f"spec.clusterIP: Invalid value: {spec['clusterIP']!r}: must be a valid IP address",
                              resource, name, field="spec.clusterIP") from None
        spec["clusterIPs"] = [spec["clusterIP"]]
