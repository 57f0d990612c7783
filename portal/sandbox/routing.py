"""The Kubernetes API's paths and verbs, as the sandbox serves them, mapped onto its store.

Only the parts of the API Gantry uses are served, but those behave like a real API server
closely enough that the official ``kubernetes`` client works unchanged: the same paths, verbs,
content types, query parameters, error ``Status`` bodies and status codes.
"""

from __future__ import annotations

import threading

from . import errors
from .patches import json_patch, merge_patch
from .resources import BY_PATH, DEPLOYMENTS, RESOURCES

VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_VERBS = ["create", "delete", "get", "list", "patch", "update"]


class Router:
    """Maps an API path and verb onto the store; one instance per request."""

    def __init__(self, store, handler):
        self.store = store
        self.handler = handler

    def route(self, method, segments, query, body):  # noqa: C901  (one flat dispatch over the URL shapes of the Kubernetes API; splitting it would hide the table)
        if segments in (["healthz"], ["livez"], ["readyz"]):
            return 200, "ok"
        if segments == ["version"]:
            return 200, VERSION
        if segments == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.handler.server.cluster.address}]}
        if segments == ["apis"]:
            return 200, _group_list()
        if segments[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segments[2:]
        elif segments[:1] == ["apis"] and len(segments) >= 3:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise errors.unsupported_resource()
        if not rest:
            return 200, _resource_list(group, version)
        if "watch" in query and query["watch"] not in ("", "false", "0"):
            raise errors.bad_request("watch is not supported by the sandbox cluster")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_PATH:
            namespace, rest = rest[1], rest[2:]
        resource = BY_PATH.get((group, version, rest[0]))
        if resource is None:
            raise errors.unsupported_resource()
        if namespace is None and resource.namespaced:
            if len(rest) == 1 and method == "GET":  # e.g. GET /apis/apps/v1/deployments
                return self._list(resource, None, query)
            raise errors.unsupported_resource()
        if len(rest) == 1:
            if method == "GET":
                return self._list(resource, namespace, query)
            if method == "POST":
                return 201, self.store.create(resource, namespace, body, self._manager(query), self._dry_run(query))
            raise errors.method_not_allowed(method)
        name, subresource = rest[1], rest[2:]
        if subresource:
            return self._subresource(method, resource, namespace, name, subresource, query, body)
        if method == "GET":
            return 200, self.store.get(resource, namespace, name)
        if method == "PUT":
            return 200, self.store.replace(resource, namespace, name, body, self._manager(query), self._dry_run(query))
        if method == "PATCH":
            return 200, self.store.patch(resource, namespace, name, self._content_type(), body, self._manager(query, apply=True),
                                         force=query.get("force") == "true", dry_run=self._dry_run(query))
        if method == "DELETE":
            return 200, self.store.delete(resource, namespace, name, self._dry_run(query))
        raise errors.method_not_allowed(method)

    def _subresource(self, method, resource, namespace, name, subresource, query, body):
        if resource.kind == "Service" and subresource[0] == "proxy":
            return self.proxy(method, namespace, name, "/".join(subresource[1:]))
        if subresource[0] == "status" and len(subresource) == 1:
            if method == "GET":
                return 200, self.store.get(resource, namespace, name)
            if method in ("PUT", "PATCH"):
                content_type = self._content_type() if method == "PATCH" else None
                return 200, self.store.write_status(resource, namespace, name, content_type, body, self._manager(query), self._dry_run(query))
        if subresource[0] == "scale" and len(subresource) == 1 and resource == DEPLOYMENTS:
            if method == "GET":
                return 200, self.store.scale(namespace, name)
            if method in ("PUT", "PATCH"):
                current = self.store.scale(namespace, name)
                if method == "PATCH":
                    wanted = json_patch(current, body) if self._content_type() == "application/json-patch+json" else merge_patch(current, body or {})
                else:
                    wanted = body or {}
                if not isinstance(wanted, dict):
                    raise errors.bad_request("a Scale must be an object")
                return 200, self.store.scale(namespace, name, (wanted.get("spec") or {}).get("replicas"), self._dry_run(query))
        raise errors.unsupported_resource()

    def proxy(self, method, namespace, target, path):
        """``services/[scheme:]NAME[:PORT]/proxy/PATH``: the health check through a Service."""
        if method != "GET":
            raise errors.method_not_allowed(method)
        parts = target.split(":")
        if parts[0] in ("http", "https") and len(parts) == 3:
            parts = parts[1:]
        name, port = parts[0], (parts[1] if len(parts) > 1 else "")
        code, payload = self.store.probe(namespace, name, port)
        served = payload.get("deployments") if isinstance(payload, dict) else None
        delay = self.handler.server.cluster.traffic.latency_seconds(served or [], namespace)
        if delay:  # a slow Deployment is slow to answer its health path too
            threading.Event().wait(delay)
        return code, payload

    def _list(self, resource, namespace, query):
        items, version = self.store.list(resource, namespace, query.get("labelSelector", ""), query.get("fieldSelector", ""))
        return 200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                     "metadata": {"resourceVersion": version}, "items": items}

    def _manager(self, query, apply=False):
        manager = query.get("fieldManager")
        if manager or (apply and self._content_type().startswith("application/apply-patch")):
            return manager  # apply requires an explicit manager; the store refuses None
        agent = self.handler.headers.get("User-Agent") or "unknown"
        return agent.split("/")[0]  # the real server names unnamed managers after the user agent

    def _content_type(self):
        return (self.handler.headers.get("Content-Type") or "").split(";")[0].strip()

    @staticmethod
    def _dry_run(query):
        value = query.get("dryRun")
        if value not in (None, "", "All"):
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return value == "All"


def _group_list():
    groups = {}
    for resource in RESOURCES:
        if resource.group:
            groups.setdefault(resource.group, set()).add(resource.version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(versions)],
                "preferredVersion": {"groupVersion": f"{group}/{max(versions)}", "version": max(versions)},
            }
            for group, versions in sorted(groups.items())
        ],
    }


def _resource_list(group, version):
    served = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not served:
        raise errors.unsupported_resource()
    resources = []
    for r in served:
        resources.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind, "verbs": _VERBS})
        if r.kind not in ("ConfigMap", "Secret", "ServiceAccount", "LimitRange", "RoleBinding"):
            resources.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]})
    if group == "apps":
        resources.append({"name": "deployments/scale", "singularName": "", "namespaced": True, "kind": "Scale",
                          "group": "autoscaling", "version": "v1", "verbs": ["get", "patch", "update"]})
    if group == "":
        resources.append({"name": "services/proxy", "singularName": "", "namespaced": True, "kind": "ServiceProxyOptions", "verbs": ["create", "delete", "get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
