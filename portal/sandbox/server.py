"""The sandbox cluster's HTTP face: Kubernetes API paths over ``ThreadingHTTPServer``.

Only the parts of the API Gantry uses are served, but those behave like a real API server
closely enough that the official ``kubernetes`` client works unchanged: the same paths, verbs,
content types, query parameters, error ``Status`` bodies and status codes.
"""

from __future__ import annotations

import hmac
import json
import logging
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import errors
from .patches import json_patch, merge_patch
from .resources import BY_PATH, DEPLOYMENTS, RESOURCES
from .store import Store
from .traffic import Traffic, parse_settings

logger = logging.getLogger(__name__)

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


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's connection pool expects
    server_version = "gantry-sandbox"
    timeout = 60  # idle keep-alive connections are dropped after a minute

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm meets the
        # client's delayed ACK and every keep-alive request waits 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):
        if self.server.cluster.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        cluster = self.server.cluster
        try:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            body = self._read_body()
            segments = [unquote(s) for s in url.path.split("/") if s]
            if segments[:1] == ["sandbox"]:
                code, payload = cluster.control(method, segments[1:], body)
            else:
                self._authenticate(cluster.token)
                code, payload = Router(cluster.store, self).route(method, segments, query, body)
        except errors.ApiError as error:
            code, payload = error.code, error.status()
        except Exception as error:  # a bug in the sandbox: answer like an API server would
            logger.exception("sandbox cluster failed on %s %s", method, self.path)
            code, payload = 500, errors.ApiError(500, "InternalError", f"sandbox error: {error!r}").status()
        self._send(code, payload)

    def _authenticate(self, token):
        if not token:
            return
        header = self.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            raise errors.unauthorized()

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if content_type.endswith("yaml"):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as error:
            raise errors.bad_request(f"the body of the request could not be decoded as {content_type or 'JSON'}: {error}")

    def _send(self, code, payload):
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class Router:
    """Maps an API path and verb onto the store; one instance per request."""

    def __init__(self, store, handler):
        self.store = store
        self.handler = handler

    def route(self, method, segments, query, body):
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, cluster):
        self.cluster = cluster
        self.connections = set()
        super().__init__(address, SandboxHandler)


class SandboxCluster:
    """A Kubernetes API test double on 127.0.0.1: start it, point a kubeconfig at ``.url``.

    ``with SandboxCluster() as cluster:`` starts it on a free port and stops it afterwards.
    """

    def __init__(self, port=0, token=None, host="127.0.0.1", rollout_delay=0.2, verbose=False):
        self.host, self.port, self.token, self.verbose = host, port, token, verbose
        self.store = Store(rollout_delay=rollout_delay)
        self.traffic = Traffic()
        self._server = None
        self._thread = None

    # --- lifecycle ---------------------------------------------------------------------------

    def bind(self):
        if self._server is None:
            self._server = _HTTPServer((self.host, self.port), self)
            self.port = self._server.server_address[1]
        return self

    def start(self):
        """Serve in a daemon thread; returns self once the port accepts connections."""
        self.bind()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-cluster-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve in the calling thread until ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM via ``main``)."""
        self.bind()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self.stop()

    def stop(self):
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        for connection in list(self._server.connections):  # don't let keep-alive clients linger
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    # --- the test-facing API -------------------------------------------------------------------

    def set_fault(self, deployment, fault):
        """Fault a deployment name or fnmatch pattern: fail_rollout, never_ready, image_pull, fail_probe, clear."""
        self.store.set_fault(deployment, fault)

    def refuse_writes(self, kind, reason):
        """Make the cluster refuse writes of one resource (plural or Kind) with `reason` (None: stop)."""
        self.store.refuse_writes(_resource_named(kind).plural, reason)

    def clear_faults(self):
        with self.store.lock:
            for pattern in list(self.store.simulator.faults):
                self.store.simulator.set_fault(pattern, "clear")
            self.store.write_faults.clear()

    def reset(self):
        self.store.reset()
        self.traffic.reset()

    def set_traffic(self, deployment, **settings):
        """How a deployment name or pattern behaves: error_rate (0..1), latency_ms, rps, cpu, memory."""
        pattern, values = parse_settings({"deployment": deployment, **settings})
        return self.traffic.set(pattern, values, self.list("deployments"))

    def metrics(self):
        """The Prometheus exposition of the simulated traffic (what ``GET /sandbox/metrics`` serves)."""
        return self.traffic.exposition(self.list("deployments"))

    def state(self):
        return self.store.snapshot()

    def get(self, kind, name, namespace=None):
        """The stored object as a dict (``kind`` is a plural or a Kind), or None."""
        resource = _resource_named(kind)
        try:
            return self.store.get(resource, namespace, name)
        except errors.ApiError as error:
            if error.code == 404:
                return None
            raise

    def list(self, kind, namespace=None, label_selector=""):
        return self.store.list(_resource_named(kind), namespace, label_selector)[0]

    def control(self, method, segments, body):
        """``/sandbox/...`` endpoints: test controls, open even when a token is required."""
        if segments == ["state"] and method == "GET":
            return 200, self.state()
        if segments == ["reset"] and method == "POST":
            self.reset()
            return 200, {"status": "reset"}
        if segments == ["faults"] and method == "GET":
            return 200, {"faults": self.state()["faults"]}
        if segments == ["faults"] and method == "POST":
            body = body or {}
            if body.get("resource"):  # {resource: "resourcequotas", fault: "refuse_writes", reason} or "clear"
                try:
                    resource = _resource_named(body["resource"])
                except ValueError as error:
                    raise errors.bad_request(str(error))
                if body.get("fault") not in ("refuse_writes", "clear"):
                    raise errors.bad_request("a resource fault is refuse_writes (with a reason) or clear")
                self.refuse_writes(resource.plural, body.get("reason") or "refused by the cluster's policy"
                                   if body.get("fault") == "refuse_writes" else None)
                return 200, {"faults": self.state()["faults"], "write_faults": self.state()["write_faults"]}
            try:
                self.set_fault(body.get("deployment"), body.get("fault"))
            except ValueError as error:
                raise errors.bad_request(str(error))
            return 200, {"faults": self.state()["faults"]}
        if segments == ["traffic"] and method == "GET":
            return 200, {"traffic": dict(self.traffic.settings)}
        if segments == ["traffic"] and method == "POST":
            try:
                pattern, values = parse_settings(body or {})
            except ValueError as error:
                raise errors.bad_request(str(error))
            return 200, {"traffic": self.traffic.set(pattern, values, self.list("deployments"))}
        if segments == ["metrics"] and method == "GET":
            return 200, self.metrics()
        raise errors.ApiError(404, "NotFound", "sandbox control endpoints: GET /sandbox/state, POST /sandbox/reset, "
                                               "GET|POST /sandbox/faults, GET|POST /sandbox/traffic, GET /sandbox/metrics")


def _resource_named(kind):
    for resource in RESOURCES:
        if kind in (resource.plural, resource.kind, resource.qualified):
            return resource
    raise ValueError(f"the sandbox does not serve {kind!r}")


def main(port=0, token=None, rollout_delay=0.2, announce=print):
    """Serve a sandbox cluster in the foreground until Ctrl-C or SIGTERM."""
    cluster = SandboxCluster(port=port, token=token, rollout_delay=rollout_delay).bind()

    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate) if threading.current_thread() is threading.main_thread() else None
    announce(f"Sandbox Kubernetes API listening on {cluster.url}")
    try:
        cluster.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
