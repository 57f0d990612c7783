"""Reading and writing objects: server-side apply (writing the same manifest twice is a no-op, so a
retried job is safe), get, list, merge patch, delete; namespaces; the connectivity check."""
from __future__ import annotations

from kubernetes import client as k8s

from .clients import _call, _request
from .errors import KubeError, _is_missing
from .resources import resource_path
from .timeouts import TIMEOUT

FIELD_MANAGER = "gantry"

# Metadata the server owns: stripped from applied manifests so that applying an object read
# back from the cluster works (the API refuses managedFields in an apply).
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


def check_cluster(cluster):
    """Connect and read the version and the namespace count: ``{"git_version", "namespaces"}``."""

    def check(api):
        version = k8s.VersionApi(api).get_code(_request_timeout=TIMEOUT)
        namespaces = k8s.CoreV1Api(api).list_namespace(_request_timeout=TIMEOUT)
        return {"git_version": version.git_version, "namespaces": len(namespaces.items)}

    return _call(cluster, check)


def ensure_namespace(cluster, name, labels=None):
    """Create the namespace or bring its labels up to date (server-side apply)."""
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}
    return apply(cluster, manifest)


def delete_namespace(cluster, name):
    """Delete a namespace and everything in it; True if it existed."""
    return delete(cluster, "v1", "Namespace", "", name)


def apply(cluster, manifest, field_manager=FIELD_MANAGER, dry_run=False):
    """Server-side apply of one object of any known kind, taking over conflicting fields.

    Returns the object as the cluster now has it (or would have it, with ``dry_run``).
    """
    if not isinstance(manifest, dict) or not manifest.get("apiVersion") or not manifest.get("kind"):
        raise KubeError("a manifest needs apiVersion and kind", reason="BadManifest")
    metadata = manifest.get("metadata") or {}
    if not metadata.get("name"):
        raise KubeError(f"the {manifest['kind']} manifest has no metadata.name", reason="BadManifest")
    body = {k: v for k, v in manifest.items() if k != "status"}
    body["metadata"] = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA}
    path = resource_path(manifest["apiVersion"], manifest["kind"], metadata.get("namespace", ""), metadata["name"])
    query = [("fieldManager", field_manager), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    return _request(cluster, "PATCH", path, query, body, content_type="application/apply-patch+yaml")


def get(cluster, api_version, kind, namespace, name):
    """The object as a dict, or None if it does not exist."""
    try:
        return _request(cluster, "GET", resource_path(api_version, kind, namespace, name))
    except KubeError as error:
        if _is_missing(error, name):
            return None
        raise


def list_objects(cluster, api_version, kind, namespace, label_selector=""):
    """Objects of one kind in a namespace (``namespace=""`` for cluster-scoped kinds)."""
    query = [("labelSelector", label_selector)] if label_selector else []
    answer = _request(cluster, "GET", resource_path(api_version, kind, namespace), query)
    items = answer.get("items") or []
    for item in items:  # the API leaves these out of list items; callers want whole objects
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
    return items


def patch_merge(cluster, api_version, kind, namespace, name, patch, field_manager=FIELD_MANAGER):
    """A JSON merge patch (RFC 7386): e.g. ``{"spec": {"selector": {"color": "green"}}}``."""
    path = resource_path(api_version, kind, namespace, name)
    return _request(cluster, "PATCH", path, [("fieldManager", field_manager)], patch, content_type="application/merge-patch+json")


def delete(cluster, api_version, kind, namespace, name):
    """Delete one object; True if it existed, False if it was already gone."""
    try:
        _request(cluster, "DELETE", resource_path(api_version, kind, namespace, name), [("propagationPolicy", "Background")])
    except KubeError as error:
        if _is_missing(error, name):
            return False
        raise
    return True
