"""Live health of what runs in an environment, read from the cluster through portal.kube.

The probe (deployments.monitoring.probing) reads each namespace once per cycle with
``read_namespace`` (its Deployments and pods, and its Services when a blue-green service runs
there) and judges every service from that snapshot with ``observe``: replicas are read once per
namespace and cycle, whatever the number of services.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from portal import kube

from . import bluegreen
from .choices import BLUE_GREEN

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: the same documents, faster
ORDER = ["healthy", "progressing", "degraded", "down"]


@dataclass
class Workload:
    """What the manifests a live deployment ran say about where to look (read once per probe)."""

    deployments: list[str]  # the Deployments to judge (blue-green: the colour is added from the live Service)
    blue_green: tuple[str, str] | None = None  # (Deployment name, live Service name)
    endpoint: tuple[str | None, object] = (None, None)  # (Service name, port) the health path is probed through

    def as_dict(self):
        """JSON for the cell (monitoring.CellHealth.workload), so steady probes never parse the manifests again."""
        return {"deployments": list(self.deployments), "blue_green": list(self.blue_green) if self.blue_green else None,
                "endpoint": list(self.endpoint)}

    @classmethod
    def from_dict(cls, data):
        return cls(list(data["deployments"]), tuple(data["blue_green"]) if data.get("blue_green") else None,
                   tuple(data["endpoint"]))


@dataclass
class Namespace:
    """One namespace as read for a probe cycle."""

    deployments: dict = field(default_factory=dict)  # name -> Deployment object
    pods: list = field(default_factory=list)
    services: dict = field(default_factory=dict)  # name -> Service object (only read when needed)
    _by_label: dict | None = None

    def pods_for(self, selector):
        """The pods a Deployment's selector could pick: those sharing one of its matchLabels (indexed once)."""
        match = (selector or {}).get("matchLabels") or {}
        if not match:
            return self.pods
        if self._by_label is None:
            self._by_label = {}
            for pod in self.pods:
                for pair in ((pod.get("metadata") or {}).get("labels") or {}).items():
                    self._by_label.setdefault(pair, []).append(pod)
        return self._by_label.get(next(iter(sorted(match.items()))), [])


@dataclass
class Observation:
    status: str
    ready: int
    desired: int
    color: str
    detail: str
    restarts: int = 0  # container restarts of the live pods, as the cluster counts them


def workload_of(deployment):
    """The Workload of a live deployment, from its rendered manifests (parsed once)."""
    try:
        documents = [d for d in yaml.load_all(deployment.rendered_manifest or "", Loader=_Loader) if isinstance(d, dict)]
    except yaml.YAMLError:
        documents = []
    names = [(d.get("metadata") or {}).get("name") for d in documents if d.get("kind") == "Deployment"]
    endpoint = (None, None)
    service = next((d for d in documents if d.get("kind") == "Service"), None)
    if service is not None:
        ports = (service.get("spec") or {}).get("ports") or []
        endpoint = ((service.get("metadata") or {}).get("name"), ports[0].get("port") if ports else None)
    blue_green = None
    if deployment.service.strategy == BLUE_GREEN:
        # The live Service and the Deployment are those the manifest names (bluegreen), not the catalog entry.
        blue_green = bluegreen.live_names(deployment.rendered_manifest, deployment.service.name, documents)
    return Workload([n for n in names if n] or [deployment.service.name], blue_green, endpoint)


def read_namespace(cluster, namespace, services=False):
    """A Namespace snapshot in two or three list requests. Raises kube.KubeError."""
    snapshot = Namespace(
        deployments={d["metadata"]["name"]: d for d in kube.list_objects(cluster, "apps/v1", "Deployment", namespace)},
        pods=kube.list_objects(cluster, "v1", "Pod", namespace))
    if services:
        snapshot.services = {s["metadata"]["name"]: s for s in kube.list_objects(cluster, "v1", "Service", namespace)}
    return snapshot


def read_workload(cluster, namespace, workload):
    """A Namespace snapshot holding only what one workload needs (one verification probe). Raises kube.KubeError."""
    snapshot = Namespace()
    names = workload.deployments
    if workload.blue_green:
        workload_name, service_name = workload.blue_green
        service = kube.get(cluster, "v1", "Service", namespace, service_name)
        if service is not None:
            snapshot.services[service_name] = service
        color = bluegreen.selected_color(service)
        names = [bluegreen.colored_name(workload_name, color)] if color else []
    for name in names:
        found = kube.get(cluster, "apps/v1", "Deployment", namespace, name)
        if found is None:
            continue
        snapshot.deployments[name] = found
        selector = (found.get("spec") or {}).get("selector") or {}
        labels = ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
        if labels:
            snapshot.pods += kube.list_objects(cluster, "v1", "Pod", namespace, labels)
    return snapshot


def classify(status):
    """healthy / progressing / degraded / down from a kube.deployment_status summary."""
    desired, ready = status.get("desired") or 0, status.get("ready") or 0
    if status.get("failure"):
        return ("degraded" if ready else "down"), status["failure"]
    if desired == 0:
        return "down", "scaled to zero"
    if status.get("done") and ready >= desired:
        return "healthy", ""
    if ready == 0:
        return "progressing" if status.get("observed_generation", 0) < status.get("generation", 0) else "down", \
            f"0 of {desired} replicas ready"
    return ("progressing" if not status.get("done") else "degraded"), f"{ready} of {desired} replicas ready"


def observe(snapshot, workload):
    """Judge one service from its namespace's snapshot (no request)."""
    color = ""
    names = workload.deployments
    if workload.blue_green:
        workload_name, service_name = workload.blue_green
        color = bluegreen.selected_color(snapshot.services.get(service_name))
        if not color:
            return Observation("down", 0, 0, "", f"Service {service_name} selects no colour")
        names = [bluegreen.colored_name(workload_name, color)]
    ready_total = desired_total = restarts = 0
    worst, details = "healthy", []
    for name in names:
        found = snapshot.deployments.get(name)
        if found is None:
            status, ready, desired, detail = "down", 0, 0, f"Deployment {name} is missing"
        else:
            summary = kube.summarize_deployment(found, snapshot.pods_for((found.get("spec") or {}).get("selector")))
            status, detail = classify(summary)
            ready, desired = summary.get("ready") or 0, summary.get("desired") or 0
            restarts += summary["restarts"]
        ready_total += ready
        desired_total += desired
        if ORDER.index(status) > ORDER.index(worst):
            worst = status
        if detail:
            details.append(detail)
    return Observation(worst, ready_total, desired_total, color, "; ".join(details)[:500], restarts)
