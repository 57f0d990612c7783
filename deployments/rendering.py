"""Rendering a service's manifests for one environment, and the hash approvals are bound to."""
import difflib
import hashlib
import json

from .manifests import render


def render_values(release, environment, color=""):
    return {
        "image": release.image,
        "version": release.version,
        "service": release.service.name,
        "environment": environment.slug,
        "namespace": environment.namespace,
        "replicas": environment.replicas,
        "color": color,
    }


def manifest_hash(service, release, environment):
    """SHA-256 over the manifest template and every value filled in (the colour aside, which the
    deploy job picks): if the template, the image or the environment's values change, so does this."""
    values = render_values(release, environment)
    values.pop("color")
    payload = json.dumps({"template": service.manifest, "values": values}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def render_text(service, release, environment, color="blue"):
    return render(service.manifest, render_values(release, environment, color))


def manifest_diff(old_text, new_text, old_label="running now", new_label="this deployment"):
    """Unified diff lines between two rendered manifests ([] when identical)."""
    return list(difflib.unified_diff((old_text or "").splitlines(), (new_text or "").splitlines(),
                                     fromfile=old_label, tofile=new_label, lineterm=""))
