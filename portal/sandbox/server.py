"""The sandbox cluster: a Kubernetes API test double on 127.0.0.1 (``SandboxCluster``): starting and
stopping it, what tests ask of it (faults, traffic, state), and its ``/sandbox/...`` control endpoints.
The HTTP side is ``handler``, the API's paths ``routing``, the objects ``store``."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading

from . import errors
from .handler import SandboxHTTPServer
from .resources import RESOURCES
from .store import Store
from .traffic import Traffic, parse_settings


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
            self._server = SandboxHTTPServer((self.host, self.port), self)
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
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
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

    def restart_pods(self, deployment, count=1):
        """Restart a container of the pods of a deployment name, pattern or ``namespace/name`` ``count``
        times (their ``restartCount`` rises); returns the Deployments it restarted."""
        return self.store.add_restarts(deployment, count)

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
        return self.traffic.exposition(self.list("deployments"), self.list("pods"))

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
                    raise errors.bad_request(str(error)) from None
                if body.get("fault") not in ("refuse_writes", "clear"):
                    raise errors.bad_request("a resource fault is refuse_writes (with a reason) or clear")
                self.refuse_writes(resource.plural, body.get("reason") or "refused by the cluster's policy"
                                   if body.get("fault") == "refuse_writes" else None)
                return 200, {"faults": self.state()["faults"], "write_faults": self.state()["write_faults"]}
            try:
                self.set_fault(body.get("deployment"), body.get("fault"))
            except ValueError as error:
                raise errors.bad_request(str(error)) from None
            return 200, {"faults": self.state()["faults"]}
        if segments == ["traffic"] and method == "GET":
            return 200, {"traffic": dict(self.traffic.settings)}
        if segments == ["traffic"] and method == "POST":
            try:
                pattern, values = parse_settings(body or {})
            except ValueError as error:
                raise errors.bad_request(str(error)) from None
            return 200, {"traffic": self.traffic.set(pattern, values, self.list("deployments"))}
        if segments == ["metrics"] and method == "GET":
            return 200, self.metrics()
        if segments == ["restarts"] and method == "POST":  # {deployment: NAME_OR_PATTERN, count: N}
            body = body or {}
            try:
                restarted = self.restart_pods(body.get("deployment"), body.get("count", 1))
            except ValueError as error:
                raise errors.bad_request(str(error)) from None
            return 200, {"restarted": restarted}
        raise errors.ApiError(404, "NotFound", "sandbox control endpoints: GET /sandbox/state, POST /sandbox/reset, "
                                               "GET|POST /sandbox/faults, GET|POST /sandbox/traffic, GET /sandbox/metrics, "
                                               "POST /sandbox/restarts")


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
