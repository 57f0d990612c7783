"""Every blue-green fact in one place (API.md, Manifests).

A blue-green service's manifest has one Deployment and one Service. The Deployment runs as
`<name>-blue` and `<name>-green` (the colour in its selector and pod labels); each colour has a
probe Service `<service>-<colour>`; the main Service (named in the manifest) selects the live
colour. The idle colour keeps running for a while so a rollback is a selector flip back; when it
is scaled down, the replicas it had are kept in an annotation.
"""
import copy

import yaml

from portal import kube

from . import manifests
from .apply import DeployFailed

COLORS = ("blue", "green")
SCALED_FROM_ANNOTATION = "gantry.dev/replicas-before-scale-down"


def colored_name(name, color):
    """``<name>-<color>``: the Deployment running one colour, or the Service probing it."""
    return f"{name}-{color}"


def other_color(color):
    return {"blue": "green", "green": "blue"}.get(color, "blue")


PAIR_NEEDED = "a blue-green service needs exactly one Deployment and one Service in its manifest; fix the service's manifest"


def require_pair(documents):
    pair = manifests.blue_green_pair(documents)
    if pair is None:
        raise DeployFailed(PAIR_NEEDED)
    return pair


def colored_deployment(deployment, color):
    """``<name>-<color>``: the Deployment with ``color`` in its selector and pod labels."""
    colored = copy.deepcopy(deployment)
    metadata = colored["metadata"]
    metadata["name"] = colored_name(metadata["name"], color)
    metadata["labels"] = {**(metadata.get("labels") or {}), "color": color}
    spec = colored.setdefault("spec", {})
    selector = spec.setdefault("selector", {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "color": color}
    template_metadata = spec.setdefault("template", {}).setdefault("metadata", {})
    template_metadata["labels"] = {**(template_metadata.get("labels") or {}), "color": color}
    return colored


def colored_service(service, color, name=None):
    """The Service selecting one colour: ``name`` (the main Service at the flip) or ``<name>-<color>``."""
    colored = copy.deepcopy(service)
    metadata = colored["metadata"]
    metadata["name"] = name or colored_name(metadata["name"], color)
    spec = colored.setdefault("spec", {})
    spec["selector"] = {**(spec.get("selector") or {}), "color": color}
    return colored


def service_port(service):
    ports = (service.get("spec") or {}).get("ports") or []
    return ports[0].get("port") if ports else None


def live_color(cluster, namespace, service_name):
    """The colour the live Service selects now ("" when none)."""
    return selected_color(kube.get(cluster, "v1", "Service", namespace, service_name))


def selected_color(service):
    """The colour a Service object (as read from the cluster, or None) selects ("" when none)."""
    color = (((service or {}).get("spec") or {}).get("selector") or {}).get("color")
    return color if color in COLORS else ""


def manifest_names(text, documents=None):
    """(Deployment name, Service name, Service document) of a blue-green manifest, without checks.

    ``documents``: the manifest already parsed (callers that read it for other reasons too)."""
    if documents is None:
        try:
            documents = [d for d in yaml.safe_load_all(text or "") if isinstance(d, dict)]
        except yaml.YAMLError:
            return None
    pair = manifests.blue_green_pair(documents)
    if pair is None:
        return None
    return pair[0]["metadata"]["name"], pair[1]["metadata"]["name"], pair[1]


def live_names(rendered_manifest, fallback, documents=None):
    """(Deployment name, live Service name) of a blue-green deployment, read from the manifests it
    ran; `fallback` (the catalog name) for both when they cannot be read."""
    names = manifest_names(rendered_manifest, documents)
    return (names[0], names[1]) if names else (fallback, fallback)
