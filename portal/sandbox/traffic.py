"""Simulated request traffic of the sandbox's Deployments, served as Prometheus metrics.

A test (or the demo) says how a Deployment behaves with ``POST /sandbox/traffic``
(``{deployment: NAME_OR_PATTERN, error_rate: 0..1, latency_ms, rps, cpu, memory}``; a pattern
``namespace/name`` limits it to one namespace); every
Deployment with a ready replica then receives ``rps`` requests per second (default 10) of which
``error_rate`` answer 500, each taking ``latency_ms``. ``GET /sandbox/metrics`` serves the running
totals in the Prometheus text format, so a real Prometheus can scrape them:

- ``http_requests_total{namespace, deployment, code}`` (counter),
- ``http_request_duration_seconds{namespace, deployment}`` (histogram),
- per container of each running pod, under the names cAdvisor and kube-state-metrics use, so the
  same PromQL works against a real cluster: ``container_cpu_usage_seconds_total`` (counter),
  ``container_memory_working_set_bytes`` (gauge) and ``kube_pod_container_resource_limits``
  (``resource="cpu"``, ``unit="core"`` / ``resource="memory"``, ``unit="byte"``), with ``namespace``,
  ``pod`` and ``container`` labels. ``cpu`` and ``memory`` say which share of the container's limit
  is in use (a container without limits counts as 1 core and 1 GiB, as a LimitRange default would).

The counters advance with the clock between reads, piecewise at the rate in force, so a change of
error rate shows in ``rate(...)`` from the moment it is made. The same latency delays the health
path answered through the Service proxy, so a "slow" Deployment is slow to probe too.
"""

from __future__ import annotations

import fnmatch
import threading
import time

from portal import quantity

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEFAULTS = {"error_rate": 0.0, "latency_ms": 20.0, "rps": 10.0, "cpu": 0.1, "memory": 0.3}
DEFAULT_LIMITS = {"cpu": "1", "memory": "1Gi"}  # for a container without limits
_BOUNDS = {"error_rate": (0.0, 1.0), "latency_ms": (0.0, 600_000.0), "rps": (0.0, 100_000.0), "cpu": (0.0, 1.0), "memory": (0.0, 1.0)}


def parse_settings(body):
    """Check a ``POST /sandbox/traffic`` body; returns (pattern, settings) or raises ValueError."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    pattern = body.get("deployment")
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("traffic needs a deployment name or pattern")
    unknown = sorted(set(body) - set(_BOUNDS) - {"deployment"})
    if unknown:
        raise ValueError(f"unknown traffic fields: {', '.join(unknown)}; use {', '.join(_BOUNDS)}")
    settings = {}
    for key, (low, high) in _BOUNDS.items():
        if key not in body:
            continue
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"{key} must be a number from {low:g} to {high:g}")
        settings[key] = float(value)
    return pattern, settings


class Traffic:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.settings = {}  # pattern -> partial settings; later patterns win
            self.totals = {}  # (namespace, name) -> {"ok", "errors", "buckets": [...], "sum", "at"}

    def set(self, pattern, settings, deployments):
        """Apply new settings to a pattern (after counting what happened at the old rate)."""
        with self.lock:
            self._advance(deployments)
            if settings:
                self.settings[pattern] = {**self.settings.get(pattern, {}), **settings}
            else:  # an empty body for a pattern clears it
                self.settings.pop(pattern, None)
            return dict(self.settings)

    def settings_for(self, name, namespace=""):
        """A pattern matches the Deployment's name, or ``namespace/name`` for one namespace only."""
        merged = dict(DEFAULTS)
        qualified = f"{namespace}/{name}"
        for pattern, values in self.settings.items():
            if pattern in (name, qualified) or fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(qualified, pattern):
                merged.update(values)
        return merged

    def latency_seconds(self, names, namespace=""):
        with self.lock:
            return max((self.settings_for(name, namespace)["latency_ms"] for name in names), default=0.0) / 1000.0

    def _advance(self, deployments):
        now = self.clock()
        seen = set()
        for deployment in deployments:
            key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
            seen.add(key)
            total = self.totals.setdefault(key, {"ok": 0.0, "errors": 0.0, "buckets": [0.0] * len(BUCKETS), "sum": 0.0,
                                                 "cpu_share_seconds": 0.0, "at": now})
            ready = (deployment.get("status") or {}).get("readyReplicas", 0)
            elapsed, total["at"] = now - total["at"], now
            if not ready or elapsed <= 0:
                continue
            setting = self.settings_for(key[1], key[0])
            total["cpu_share_seconds"] += setting["cpu"] * elapsed  # x a container's cores: its CPU seconds
            count = setting["rps"] * elapsed
            total["errors"] += count * setting["error_rate"]
            total["ok"] += count * (1 - setting["error_rate"])
            latency = setting["latency_ms"] / 1000.0
            total["sum"] += count * latency
            for index, bound in enumerate(BUCKETS):
                if latency <= bound:
                    total["buckets"][index] += count
        for key in set(self.totals) - seen:  # a deleted Deployment's series end
            del self.totals[key]

    def exposition(self, deployments, pods=()):
        """The Prometheus text format (version 0.0.4) for the given Deployment objects and their pods."""
        with self.lock:
            self._advance(deployments)
            lines = ["# HELP http_requests_total Requests served by the Deployment's pods.",
                     "# TYPE http_requests_total counter"]
            rows = sorted(self.totals.items())
            for (namespace, name), total in rows:
                labels = f'namespace="{_escape(namespace)}",deployment="{_escape(name)}"'
                lines.append(f'http_requests_total{{{labels},code="200"}} {total["ok"]:.6f}')
                lines.append(f'http_requests_total{{{labels},code="500"}} {total["errors"]:.6f}')
            lines += ["# HELP http_request_duration_seconds Time taken to answer a request.",
                      "# TYPE http_request_duration_seconds histogram"]
            for (namespace, name), total in rows:
                labels = f'namespace="{_escape(namespace)}",deployment="{_escape(name)}"'
                for bound, count in zip(BUCKETS, total["buckets"], strict=False):
                    lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{bound:g}"}} {count:.6f}')
                count = total["ok"] + total["errors"]
                lines.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count:.6f}')
                lines.append(f"http_request_duration_seconds_sum{{{labels}}} {total['sum']:.6f}")
                lines.append(f"http_request_duration_seconds_count{{{labels}}} {count:.6f}")
            lines += self._containers(pods)
            return "\n".join(lines) + "\n"

    def _containers(self, pods):
        """cAdvisor's and kube-state-metrics' figures for every container of the running pods."""
        usage, memory, limits = [], [], []
        for pod in pods:
            metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
            owner = next((o["name"] for o in metadata.get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"), "")
            key = (metadata.get("namespace", ""), owner.rsplit("-", 1)[0])
            if status.get("phase") != "Running" or key not in self.totals:
                continue
            setting = self.settings_for(key[1], key[0])
            for container in (pod.get("spec") or {}).get("containers") or []:
                given = (container.get("resources") or {}).get("limits") or {}
                cores = float(quantity.parse(given.get("cpu") or DEFAULT_LIMITS["cpu"]))
                size = float(quantity.parse(given.get("memory") or DEFAULT_LIMITS["memory"]))
                labels = (f'namespace="{_escape(key[0])}",pod="{_escape(metadata.get("name", ""))}",'
                          f'container="{_escape(container.get("name", ""))}"')
                usage.append(f"container_cpu_usage_seconds_total{{{labels}}} {self.totals[key]['cpu_share_seconds'] * cores:.6f}")
                memory.append(f"container_memory_working_set_bytes{{{labels}}} {setting['memory'] * size:.0f}")
                limits.append(f'kube_pod_container_resource_limits{{{labels},resource="cpu",unit="core"}} {cores:g}')
                limits.append(f'kube_pod_container_resource_limits{{{labels},resource="memory",unit="byte"}} {size:.0f}')
        return (["# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.",
                 "# TYPE container_cpu_usage_seconds_total counter"] + usage
                + ["# HELP container_memory_working_set_bytes Current working set in bytes.",
                   "# TYPE container_memory_working_set_bytes gauge"] + memory
                + ["# HELP kube_pod_container_resource_limits The number of requested limit resource by a container.",
                   "# TYPE kube_pod_container_resource_limits gauge"] + limits)


def _escape(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
