"""Quotas in the sandbox: object counts and ``pods`` checked on every write (as the API server's quota
admission does), and a ResourceQuota's status (what its namespace uses). A mixin of the Store, whose
objects it counts."""

from __future__ import annotations

from . import admission, errors
from .resources import DEPLOYMENTS, PODS, RESOURCE_QUOTAS, RESOURCES


class QuotaAccounting:
    def _admit_quota(self, resource, namespace, name, live, new):
        """Object-count quotas (``count/deployments.apps``, ``services``...) and ``pods``.

        A real cluster refuses the pods a ReplicaSet tries to create past a ``pods`` quota; the
        sandbox refuses the Deployment itself, so the refusal reaches whoever applied it.
        """
        if not resource.namespaced or (live is not None and resource != DEPLOYMENTS):
            return
        if resource == DEPLOYMENTS:
            quotas = self.objects.of(RESOURCE_QUOTAS, namespace)
            others = [d for d in self._deployments(namespace) if d["metadata"]["name"] != name]
            admission.admit_deployment(resource, name, new, others, quotas, self._limit_ranges(namespace))
        count_keys = {f"count/{resource.qualified}"} | ({resource.plural} if not resource.group else set())
        for (res, ns, quota_name), quota in self.objects.items():
            if res != RESOURCE_QUOTAS or ns != namespace:
                continue
            for key, limit in ((quota.get("spec") or {}).get("hard") or {}).items():
                limit = _as_int(limit)
                if limit is None:
                    continue
                if key in count_keys and live is None:
                    used, requested = self._count(resource, namespace), 1
                elif key == "pods" and resource in (DEPLOYMENTS, PODS):
                    used = self._pods_in_use(namespace, exclude=name if resource == DEPLOYMENTS else None)
                    requested = new["spec"].get("replicas", 1) if resource == DEPLOYMENTS else 1
                    if live is not None and requested <= live["spec"].get("replicas", 1):
                        continue
                else:
                    continue
                if used + requested > limit:
                    raise errors.forbidden(
                        f'{resource.qualified} "{name}" is forbidden: exceeded quota: {quota_name}, '
                        f"requested: {key}={requested}, used: {key}={used}, limited: {key}={limit}",
                        resource, name,
                    )

    def _count(self, resource, namespace):
        return len(self.objects.of(resource, namespace))

    def _pods_in_use(self, namespace, exclude=None):
        replicas = sum(d["spec"].get("replicas", 1) for d in self._deployments(namespace) if d["metadata"]["name"] != exclude)
        return replicas + self._count(PODS, namespace)

    def _quota_status(self, quota):
        """A ResourceQuota's status: its hard limits and what the namespace uses of each."""
        hard = (quota.get("spec") or {}).get("hard") or {}
        used = {}
        for key in hard:
            if key == "pods":
                used[key] = str(self._pods_in_use(quota["metadata"]["namespace"]))
            else:
                counted = next((r for r in RESOURCES if key in (f"count/{r.qualified}", r.plural if not r.group else None)), None)
                if counted is not None:
                    used[key] = str(self._count(counted, quota["metadata"]["namespace"]))
        namespace = quota["metadata"]["namespace"]
        used.update(admission.quota_used(hard, self._deployments(namespace), self._limit_ranges(namespace)))
        return {"hard": dict(hard), "used": used}


def _as_int(value):
    try:
        return int(str(value))
    except ValueError:
        return None
