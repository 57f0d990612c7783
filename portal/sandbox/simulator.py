"""The rollout simulator: what the controllers and kubelets of a real cluster would do.

A Deployment whose spec changes starts a rollout. After ``delay`` seconds the rollout ends
the way its fault (if any) says: ready, failed (ProgressDeadlineExceeded), stuck pulling its
image, or never ready. Pods are not stored; they are derived from the Deployments on every
read, so they always agree with the rollout. The simulator holds no lock of its own: the store
calls it while holding the store's lock.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
import uuid
from dataclasses import dataclass

FAULTS = ("fail_rollout", "never_ready", "image_pull", "fail_probe")


@dataclass
class Rollout:
    started: float
    template_hash: str
    previous_hash: str | None  # pods of the previous template that keep serving meanwhile
    previous_ready: int
    phase: str = "progressing"  # progressing | complete | failed | image_pull | stuck
    deadline_exceeded: bool = False


def template_hash(deployment):
    template = json.dumps(deployment["spec"].get("template", {}), sort_keys=True)
    return hashlib.sha256(template.encode()).hexdigest()[:10]


def _stable_uid(*parts):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sandbox:" + "/".join(parts)))


def _condition(kind, status, reason, message, now):
    return {"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message}


def _compact(status):
    """The API omits zero counts (``omitempty``); clients must treat a missing count as 0."""
    return {k: v for k, v in status.items() if v not in (0, None)}


class RolloutSimulator:
    def __init__(self, delay=0.2, clock=time.monotonic):
        self.delay = delay
        self.clock = clock
        self.faults = {}  # deployment name or fnmatch pattern -> fault
        self.rollouts = {}  # (namespace, name) -> Rollout
        self.restarts = {}  # (namespace, name) -> (template hash, container restarts of its first pod)

    # --- faults ---------------------------------------------------------------------------

    def fault_for(self, name):
        if name in self.faults:
            return self.faults[name]
        for pattern, fault in self.faults.items():
            if fnmatch.fnmatchcase(name, pattern):
                return fault
        return None

    def set_fault(self, pattern, fault):
        """Set (or with ``"clear"``/None, remove) the fault for a deployment name or pattern.

        Clearing a fault restarts the rollouts it held back, so a stuck deployment recovers
        ``delay`` seconds later, as if someone had fixed the image.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("a fault needs a deployment name or pattern")
        if fault in (None, "clear"):
            self.faults.pop(pattern, None)
            for (_, name), rollout in self.rollouts.items():
                if rollout.phase != "complete" and fnmatch.fnmatchcase(name, pattern):
                    rollout.phase, rollout.started, rollout.deadline_exceeded = "progressing", self.clock(), False
        elif fault in FAULTS:
            self.faults[pattern] = fault
        else:
            raise ValueError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)} or clear")

    def add_restarts(self, deployments, pattern, count):
        """Restart the first container of the first pod of each matching Deployment ``count`` times.

        ``pattern``: a name or fnmatch pattern, or ``namespace/name``. The count belongs to the pods of
        the current template: a new rollout brings pods that start again at 0, as in a real cluster.
        Returns the ``namespace/name`` of the Deployments it restarted.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("restarts need a deployment name or pattern")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
            raise ValueError("count must be a whole number from 1 to 1000")
        hit = []
        for deployment in deployments:
            key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
            if not (fnmatch.fnmatchcase(key[1], pattern) or fnmatch.fnmatchcase(f"{key[0]}/{key[1]}", pattern)):
                continue
            rollout = self.rollouts.get(key)
            if rollout is None:
                continue
            current = self.restarts.get(key)
            before = current[1] if current and current[0] == rollout.template_hash else 0
            self.restarts[key] = (rollout.template_hash, before + count)
            hit.append(f"{key[0]}/{key[1]}")
        return hit

    # --- rollouts -------------------------------------------------------------------------

    def start(self, deployment, old, now, register=True):
        """A Deployment was created or its spec changed: begin a rollout, return its status."""
        key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        previous = self.rollouts.get(key)
        ready = (old or {}).get("status", {}).get("readyReplicas", 0)
        if previous is None:
            previous_hash, previous_ready = None, 0
        elif previous.phase == "complete":
            previous_hash, previous_ready = previous.template_hash, ready
        else:  # the last rollout never finished: the pods before it are still the ones serving
            previous_hash, previous_ready = previous.previous_hash, previous.previous_ready
        rollout = Rollout(self.clock(), template_hash(deployment), previous_hash, previous_ready)
        if register:
            self.rollouts[key] = rollout
        return self._status(deployment, rollout, now)

    def forget(self, namespace, name=None):
        for key in [k for k in self.rollouts if k[0] == namespace and (name is None or k[1] == name)]:
            del self.rollouts[key]
        for key in [k for k in self.restarts if k[0] == namespace and (name is None or k[1] == name)]:
            del self.restarts[key]

    def advance(self, deployments, now):
        """Move rollouts whose time has come; return ``{(namespace, name): new status}``."""
        changes = {}
        clock = self.clock()
        for key, rollout in list(self.rollouts.items()):
            deployment = deployments.get(key)
            if deployment is None:
                del self.rollouts[key]
                continue
            if rollout.phase == "progressing" and clock >= rollout.started + self.delay:
                fault = self.fault_for(key[1])
                rollout.phase = {"fail_rollout": "failed", "image_pull": "image_pull", "never_ready": "stuck"}.get(fault, "complete")
                changes[key] = self._status(deployment, rollout, now)
            elif rollout.phase in ("image_pull", "stuck") and not rollout.deadline_exceeded:
                deadline = deployment["spec"].get("progressDeadlineSeconds", 600)
                if clock >= rollout.started + deadline:
                    rollout.deadline_exceeded = True
                    changes[key] = self._status(deployment, rollout, now)
        return changes

    def _serving(self, rollout, desired):
        """How many ready pods there are while the rollout has not completed."""
        if rollout.previous_hash == rollout.template_hash:
            return min(rollout.previous_ready, desired)
        return rollout.previous_ready

    def _status(self, deployment, rollout, now):
        metadata, desired = deployment["metadata"], deployment["spec"].get("replicas", 1)
        replica_set = f'{metadata["name"]}-{rollout.template_hash}'
        if rollout.phase == "complete":
            ready, updated = desired, desired
        else:
            ready = self._serving(rollout, desired)
            updated = 0 if rollout.phase == "progressing" else desired
        minimum = desired - desired // 4  # maxUnavailable 25%, rounded down like the controller
        available = _condition(
            "Available",
            "True" if ready >= minimum else "False",
            "MinimumReplicasAvailable" if ready >= minimum else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if ready >= minimum else "Deployment does not have minimum availability.",
            now,
        )
        if rollout.phase == "complete":
            progressing = _condition("Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{replica_set}" has successfully progressed.', now)
        elif rollout.phase == "failed" or rollout.deadline_exceeded:
            progressing = _condition("Progressing", "False", "ProgressDeadlineExceeded", f'ReplicaSet "{replica_set}" has timed out progressing.', now)
        else:
            progressing = _condition("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{replica_set}" is progressing.', now)
        status = _compact({
            "observedGeneration": metadata.get("generation", 1),
            "replicas": max(desired, ready + updated) if rollout.phase != "complete" else desired,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(desired - ready, 0) if rollout.phase != "complete" else 0,
        })
        status["conditions"] = [available, progressing]
        return status

    # --- pods -----------------------------------------------------------------------------

    def pods(self, deployments):
        """The pods the given Deployments would have right now."""
        pods = []
        for deployment in deployments:
            metadata = deployment["metadata"]
            rollout = self.rollouts.get((metadata["namespace"], metadata["name"]))
            if rollout is None:
                continue
            desired = deployment["spec"].get("replicas", 1)
            if rollout.phase == "complete":
                pods += [self._pod(deployment, rollout.template_hash, i, "ready") for i in range(desired)]
                continue
            state = {"progressing": "creating", "image_pull": "image_pull", "failed": "crashing", "stuck": "unready"}[rollout.phase]
            serving = self._serving(rollout, desired)
            if rollout.previous_hash == rollout.template_hash:
                pods += [self._pod(deployment, rollout.template_hash, i, "ready" if i < serving else state) for i in range(desired)]
            else:
                pods += [self._pod(deployment, rollout.previous_hash, i, "ready") for i in range(serving)]
                pods += [self._pod(deployment, rollout.template_hash, i, state) for i in range(desired)]
        return pods

    def _pod(self, deployment, pod_hash, index, state):
        metadata, template = deployment["metadata"], deployment["spec"]["template"]
        replica_set = f'{metadata["name"]}-{pod_hash}'
        name = f"{replica_set}-{hashlib.sha256(f'{replica_set}/{index}'.encode()).hexdigest()[:5]}"
        containers = []
        for container in template["spec"]["containers"]:
            status = {"name": container["name"], "image": container.get("image", ""), "imageID": "", "restartCount": 0,
                      "ready": state == "ready", "started": state in ("ready", "unready")}
            if state in ("ready", "unready"):
                status["state"] = {"running": {"startedAt": metadata.get("creationTimestamp")}}
            elif state == "creating":
                status["state"] = {"waiting": {"reason": "ContainerCreating"}}
            elif state == "image_pull":
                status["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{status["image"]}"'}}
            else:
                status["restartCount"] = 5
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                               "message": f"back-off 5m0s restarting failed container={container['name']} pod={name}"}}
            containers.append(status)
        restarted = self.restarts.get((metadata["namespace"], metadata["name"]))
        if restarted and restarted[0] == pod_hash and index == 0 and containers:
            containers[0]["restartCount"] += restarted[1]
            containers[0]["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
        phase = "Pending" if state in ("creating", "image_pull") else "Running"
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": metadata["namespace"],
                "uid": _stable_uid(metadata["namespace"], name),
                "resourceVersion": metadata.get("resourceVersion"),
                "creationTimestamp": metadata.get("creationTimestamp"),
                "labels": {**(template.get("metadata", {}).get("labels") or {}), "pod-template-hash": pod_hash},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set,
                                     "uid": _stable_uid(metadata["namespace"], replica_set), "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {**template.get("spec", {}), "nodeName": "sandbox-node"},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "True" if state == "ready" else "False"}],
                "containerStatuses": containers,
            },
        }

    # --- service proxy ----------------------------------------------------------------------

    def probe(self, service, deployments):
        """What an HTTP health check through the Service would answer: ``(code, body)``.

        Healthy when the selector reaches at least one ready Deployment and none of the ready
        ones it reaches is faulted with ``fail_probe``.
        """
        name = service["metadata"]["name"]
        selector = service.get("spec", {}).get("selector") or {}
        matching = [
            d for d in deployments
            if selector and all(((d["spec"]["template"].get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        ready = [d for d in matching if d.get("status", {}).get("readyReplicas", 0) > 0]
        if not ready:
            return 503, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": f'no endpoints available for service "{name}"', "reason": "ServiceUnavailable", "code": 503}
        failing = [d["metadata"]["name"] for d in ready if self.fault_for(d["metadata"]["name"]) == "fail_probe"]
        if failing:
            return 503, {"status": "failing", "service": name, "deployments": failing}
        return 200, {"status": "ok", "service": name, "deployments": [d["metadata"]["name"] for d in ready]}
