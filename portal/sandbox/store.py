"""The sandbox's in-memory object store: the API server's semantics without the HTTP.

Every public method takes the one lock, first lets the rollout simulator catch up with the
clock, and returns deep copies, so callers (HTTP handler threads, tests) never share state.
"""

from __future__ import annotations

import copy
import datetime
import threading
import uuid

from . import admission, errors
from .bodies import SERVER_METADATA, check_body, check_version, requested_fields
from .patches import (
    apply_merge,
    fields_v1,
    json_patch,
    merge_patch,
    parse_field_selector,
    parse_label_selector,
    selector_matches,
)
from .resources import (
    DEPLOYMENTS,
    LIMIT_RANGES,
    NAMESPACES,
    NO_GENERATION,
    NO_STATUS,
    PODS,
    RESOURCE_QUOTAS,
    SERVICES,
    check_metadata,
    check_name,
    prepare,
)
from .quotas import QuotaAccounting
from .simulator import RolloutSimulator

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}


def now_iso():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Objects(dict):
    """(resource, namespace, name) -> object, with an index by resource and namespace kept alongside,
    so reading one kind in one namespace (every health probe does) never scans the whole cluster."""

    def __init__(self):
        super().__init__()
        self.index = {}  # resource -> namespace -> name -> object

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.index.setdefault(key[0], {}).setdefault(key[1], {})[key[2]] = value

    def __delitem__(self, key):
        super().__delitem__(key)
        self.index.get(key[0], {}).get(key[1], {}).pop(key[2], None)

    def of(self, resource, namespace=None):
        """The objects of one resource, in one namespace or (None) in all of them."""
        spaces = self.index.get(resource, {})
        if namespace is not None:
            return list(spaces.get(namespace, {}).values())
        return [obj for names in spaces.values() for obj in names.values()]


class Store(QuotaAccounting):
    def __init__(self, rollout_delay=0.2):
        self.lock = threading.RLock()
        self.simulator = RolloutSimulator(delay=rollout_delay)
        self.reset()

    def reset(self):
        with self.lock:
            self.objects = _Objects()  # (resource, namespace, name) -> object; namespace "" when cluster-scoped
            self.applied = {}  # (resource, namespace, name, manager) -> last applied configuration
            self.resource_version = 0
            self.next_ip = 1
            self.simulator.rollouts.clear()
            self.simulator.faults.clear()
            self.simulator.restarts.clear()
            self.write_faults = {}  # plural -> reason an admission policy refuses writes of that resource

    # --- reading ---------------------------------------------------------------------------

    def get(self, resource, namespace, name):
        with self.lock:
            self._tick()
            return self._present(resource, self._live(resource, namespace, name))

    def list(self, resource, namespace=None, label_selector="", field_selector=""):
        """Objects of one resource, in one namespace or (namespace None) in all of them."""
        labels, fields = parse_label_selector(label_selector), parse_field_selector(field_selector)
        with self.lock:
            self._tick()
            found = self.objects.of(resource, namespace)
            if resource == PODS:
                found += self._simulated_pods(namespace)
            items = [
                self._present(resource, obj)
                for obj in found
                if selector_matches(labels, obj["metadata"].get("labels")) and all(f(obj) for f in fields)
            ]
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            for item in items:  # list items carry no kind/apiVersion, as in the real API
                item.pop("kind", None)
                item.pop("apiVersion", None)
            return items, str(self.resource_version)

    def probe(self, namespace, service_name, port):
        with self.lock:
            self._tick()
            service = self._live(SERVICES, namespace, service_name)
            ports = service["spec"].get("ports") or []
            if port and not any(str(p.get("port")) == port or p.get("name") == port for p in ports):
                return 503, errors.ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{service_name}"').status()
            return self.simulator.probe(service, self._deployments(namespace))

    def snapshot(self):
        with self.lock:
            self._tick()
            objects = {}
            for (resource, _, _), obj in sorted(self.objects.items(), key=lambda kv: (kv[0][0].qualified, kv[0][1], kv[0][2])):
                objects.setdefault(resource.qualified, []).append(self._present(resource, obj))
            objects["pods"] = objects.get("pods", []) + self.simulator.pods(self._deployments(None))
            return {
                "resourceVersion": str(self.resource_version),
                "faults": dict(self.simulator.faults),
                "write_faults": dict(self.write_faults),
                "rollouts": {f"{ns}/{name}": r.phase for (ns, name), r in self.simulator.rollouts.items()},
                "objects": objects,
            }

    # --- writing ---------------------------------------------------------------------------

    def create(self, resource, namespace, body, manager=None, dry_run=False):
        body = check_body(resource, namespace, body)
        if not body["metadata"].get("name") and body["metadata"].get("generateName"):
            body["metadata"]["name"] = body["metadata"]["generateName"] + uuid.uuid4().hex[:5]
        name = body["metadata"].get("name")
        with self.lock:
            self._tick()
            if (resource, namespace or "", name) in self.objects:
                raise errors.already_exists(resource, name)
            return self._write(resource, namespace, name, None, body, manager, "Update", body, dry_run)

    def replace(self, resource, namespace, name, body, manager=None, dry_run=False):
        body = check_body(resource, namespace, body, name)
        with self.lock:
            self._tick()
            live = self._live(resource, namespace, name)
            check_version(resource, live, body)
            return self._write(resource, namespace, name, live, body, manager, "Update", body, dry_run)

    def patch(self, resource, namespace, name, content_type, patch, manager=None, force=False, dry_run=False):
        kind = PATCH_TYPES.get(content_type)
        if kind is None:
            raise errors.ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}")
        if kind == "apply":
            return self.apply(resource, namespace, name, patch, manager, force, dry_run)
        with self.lock:
            self._tick()
            live = self._live(resource, namespace, name)
            if kind == "json":
                patched = json_patch(live, patch)
            elif not isinstance(patch, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            else:
                patched = merge_patch(live, patch, strategic=(kind == "strategic"))
            patched = check_body(resource, namespace, patched, name)
            check_version(resource, live, patched)
            return self._write(resource, namespace, name, live, patched, manager, "Update", patch, dry_run)

    def apply(self, resource, namespace, name, applied, manager, force=False, dry_run=False):
        """Server-side apply: create the object if missing, else merge the applied fields."""
        if not manager:
            raise errors.bad_request("PATCH, application/apply-patch+yaml requires a fieldManager: fieldManager is required for apply requests")
        if not isinstance(applied, dict) or not applied.get("apiVersion") or not applied.get("kind"):
            raise errors.bad_request("invalid object type: an applied configuration needs apiVersion and kind")
        applied = check_body(resource, namespace, applied, name)
        for field in ("uid", "creationTimestamp", "generation"):  # resourceVersion stays: it makes apply conditional
            applied["metadata"].pop(field, None)
        with self.lock:
            self._tick()
            key = (resource, namespace or "", name)
            live = self.objects.get(key)
            if live is not None:
                check_version(resource, live, applied)
            previous = self.applied.get(key + (manager,))
            merged = apply_merge(live, applied, previous)
            merged["metadata"]["name"] = name
            result = self._write(resource, namespace, name, live, merged, manager, "Apply", applied, dry_run)
            if not dry_run:
                self.applied[key + (manager,)] = copy.deepcopy(applied)
            return result

    def write_status(self, resource, namespace, name, content_type, body, manager=None, dry_run=False):
        """PUT (content_type None) or PATCH of the ``status`` subresource: only status changes."""
        if not isinstance(body, (dict, list)):
            raise errors.bad_request("the body of the request must be an object (or a JSON patch)")
        with self.lock:
            self._tick()
            live = self._live(resource, namespace, name)
            kind = PATCH_TYPES.get(content_type) if content_type else "replace"
            if kind == "replace":
                if not isinstance(body, dict):
                    raise errors.bad_request("the body of the request must be an object")
                check_version(resource, live, body)
                source = body
            elif kind == "json":
                source = json_patch(live, body)
            elif kind in ("merge", "strategic"):
                source = merge_patch(live, body, strategic=(kind == "strategic"))
            else:
                raise errors.bad_request("the status subresource takes PUT, merge or JSON patches")
            updated = copy.deepcopy(live)
            updated["status"] = copy.deepcopy((source or {}).get("status") or {})
            self.resource_version += 1
            updated["metadata"]["resourceVersion"] = str(self.resource_version)
            self._record_manager(updated, manager or "sandbox", "Update", resource, requested_fields({"status": updated["status"]}), "status")
            if not dry_run:
                self.objects[(resource, namespace or "", name)] = updated
            return self._present(resource, updated)

    def scale(self, namespace, name, replicas=None, dry_run=False):
        """Read the Deployment ``scale`` subresource, or set its replicas."""
        with self.lock:
            self._tick()
            live = self._live(DEPLOYMENTS, namespace, name)
            if replicas is not None and replicas != live["spec"].get("replicas"):
                if not isinstance(replicas, int) or replicas < 0:
                    raise errors.invalid("spec.replicas: Invalid value: must be greater than or equal to 0", DEPLOYMENTS, name)
                updated = copy.deepcopy(live)
                updated["spec"]["replicas"] = replicas
                live = self._write(DEPLOYMENTS, namespace, name, live, updated, None, "Update", {"spec": {"replicas": replicas}}, dry_run)
            labels = ",".join(f"{k}={v}" for k, v in sorted((live["spec"]["selector"].get("matchLabels") or {}).items()))
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {k: live["metadata"].get(k) for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                "spec": {"replicas": live["spec"].get("replicas", 1)},
                "status": {"replicas": live.get("status", {}).get("replicas", 0), "selector": labels},
            }

    def delete(self, resource, namespace, name, dry_run=False):
        with self.lock:
            self._tick()
            live = self._live(resource, namespace, name)
            if not dry_run:
                del self.objects[(resource, namespace or "", name)]
                for key in [k for k in self.applied if k[:3] == (resource, namespace or "", name)]:
                    del self.applied[key]
                if resource == NAMESPACES:  # real namespaces terminate; here their contents vanish at once
                    for key in [k for k in self.objects if k[1] == name]:
                        del self.objects[key]
                    for key in [k for k in self.applied if k[1] == name]:
                        del self.applied[key]
                    self.simulator.forget(name)
                elif resource == DEPLOYMENTS:
                    self.simulator.forget(namespace, name)
            if resource == NAMESPACES:
                gone = self._present(resource, live)
                gone["status"] = {"phase": "Terminating"}
                return gone
            details = {"name": name, "kind": resource.plural, "uid": live["metadata"]["uid"]}
            if resource.group:
                details["group"] = resource.group
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def refuse_writes(self, plural, reason):
        """Refuse every write of a resource (``resourcequotas``...) with `reason`; None stops refusing."""
        with self.lock:
            if reason:
                self.write_faults[plural] = reason
            else:
                self.write_faults.pop(plural, None)

    def set_fault(self, pattern, fault):
        with self.lock:
            self._tick()
            self.simulator.set_fault(pattern, fault)

    def add_restarts(self, pattern, count):
        with self.lock:
            self._tick()
            return self.simulator.add_restarts(self._deployments(None), pattern, count)

    # --- internals -------------------------------------------------------------------------

    def _live(self, resource, namespace, name):
        obj = self.objects.get((resource, namespace or "", name))
        if obj is None and resource == PODS:
            obj = next((p for p in self._simulated_pods(namespace) if p["metadata"]["name"] == name), None)
        if obj is None:
            raise errors.not_found(resource, name)
        return obj

    def _simulated_pods(self, namespace):
        """The rollout simulator's pods, with their namespace's LimitRange defaults applied."""
        pods = self.simulator.pods(self._deployments(namespace))
        for pod in pods:
            limit_ranges = self._limit_ranges(pod["metadata"]["namespace"])
            if limit_ranges:
                pod["spec"] = admission.defaulted_pod_spec(pod["spec"], limit_ranges)
        return pods

    def _limit_ranges(self, namespace):
        return self.objects.of(LIMIT_RANGES, namespace)

    def _deployments(self, namespace):
        return self.objects.of(DEPLOYMENTS, namespace)

    def _write(self, resource, namespace, name, live, new, manager, operation, request_body, dry_run):
        """The one path every change takes: default, check, version, admit, simulate, store."""
        paths = requested_fields(request_body)
        if resource.plural in self.write_faults:  # as an admission webhook of the cluster's policy would
            raise errors.forbidden(f'admission webhook "policy.sandbox.local" denied the request: '
                                   f'{resource.qualified} "{name}": {self.write_faults[resource.plural]}', resource, name)
        metadata = new["metadata"]
        check_name(resource, name)
        check_metadata(resource, new)
        if resource.namespaced and live is None:
            self._live(NAMESPACES, None, namespace)  # 404 namespaces "x" not found, as for real
        for field in SERVER_METADATA:
            metadata.pop(field, None)
        if live is not None:
            for field in ("uid", "creationTimestamp", "generation", "managedFields"):
                if field in live["metadata"]:
                    metadata[field] = copy.deepcopy(live["metadata"][field])
        else:
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now_iso()
        if resource.kind not in NO_STATUS:  # status belongs to the server: writes to the object keep it
            new["status"] = copy.deepcopy((live or {}).get("status", {}))
        prepare(resource, new, live, self._allocate_ip)
        self._admit_quota(resource, namespace, name, live, new)
        spec_changed = live is None or live.get("spec") != new.get("spec")
        if resource.kind not in NO_GENERATION and "spec" in new:
            metadata["generation"] = 1 if live is None else live["metadata"].get("generation", 1) + (1 if spec_changed else 0)
        if resource == DEPLOYMENTS:
            self._deployment_revision(live, new)
        self._record_manager(new, manager or "sandbox", operation, resource, paths)
        if dry_run:
            if resource == DEPLOYMENTS and spec_changed:
                new["status"] = self.simulator.start(new, live, now_iso(), register=False)
            if live is not None:
                metadata["resourceVersion"] = live["metadata"]["resourceVersion"]
            return self._present(resource, new)
        self.resource_version += 1
        metadata["resourceVersion"] = str(self.resource_version)
        if resource == DEPLOYMENTS and spec_changed:
            new["status"] = self.simulator.start(new, live, now_iso())
        self.objects[(resource, namespace or "", name)] = new
        return self._present(resource, new)

    def _deployment_revision(self, live, new):
        annotations = new["metadata"].setdefault("annotations", {})
        key = "deployment.kubernetes.io/revision"
        revision = int(((live or {}).get("metadata", {}).get("annotations") or {}).get(key, "0"))
        if live is None or live["spec"].get("template") != new["spec"].get("template"):
            revision += 1
        annotations[key] = str(revision)

    def _record_manager(self, obj, manager, operation, resource, paths, subresource=None):
        """Keep one managedFields entry per (manager, operation, subresource), as the API does."""
        entry = {"manager": manager, "operation": operation, "apiVersion": resource.api_version, "time": now_iso(),
                 "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
        if subresource:
            entry["subresource"] = subresource
        entries = [e for e in obj["metadata"].get("managedFields", [])
                   if (e["manager"], e["operation"], e.get("subresource")) != (manager, operation, subresource)]
        obj["metadata"]["managedFields"] = entries + [entry]

    def _allocate_ip(self):
        self.next_ip += 1
        return f"10.96.{self.next_ip // 250}.{self.next_ip % 250 + 1}"

    def _present(self, resource, obj):
        obj = copy.deepcopy(obj)
        if resource == RESOURCE_QUOTAS:
            obj["status"] = self._quota_status(obj)
        return obj

    def _tick(self):
        deployments = {(ns, name): obj for ns, names in self.objects.index.get(DEPLOYMENTS, {}).items() for name, obj in names.items()}
        changes = self.simulator.advance(deployments, now_iso())
        for key, status in changes.items():
            self.resource_version += 1
            obj = deployments[key]
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = str(self.resource_version)
