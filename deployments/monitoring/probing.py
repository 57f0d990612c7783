"""Probing: every service of every environment, concurrently, with bounded parallelism and timeouts.

The periodic ``probe_all`` only splits the work: environments go into shards, one RQ job per
shard on the ``health`` queue, so adding workers adds probing capacity. A shard probes its cells
in a thread pool (``GANTRY_PROBE_PARALLELISM``); each probe has its own timeout
(``GANTRY_PROBE_TIMEOUT_SECONDS``), so one slow or dead endpoint delays nobody else. Threads only
talk to the cluster; the database is written afterwards by the shard's own thread, in one
transaction per environment: the raw checks, the per-minute aggregates and, when a cell's status
changed, one HealthChange row and one audit event.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import yaml
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from portal import kube
from portal.audit.services import record

from .models import CellHealth, HealthChange, HealthCheck

ORDER = ["healthy", "progressing", "degraded", "down"]


@dataclass
class Outcome:
    """What one probe of one cell found (no database access)."""

    environment_id: int
    service_id: int
    deployment_id: int
    status: str
    reason: str
    ok: bool
    latency_ms: int | None
    ready: int = 0
    desired: int = 0
    color: str = ""


def parallelism():
    return max(1, int(getattr(settings, "GANTRY_PROBE_PARALLELISM", 16)))


def probe_timeout():
    return float(getattr(settings, "GANTRY_PROBE_TIMEOUT_SECONDS", 5))


def service_endpoint(deployment):
    """(Service name, port) of the release's manifests: where its health path is probed, or (None, None)."""
    try:
        for doc in yaml.safe_load_all(deployment.rendered_manifest or ""):
            if isinstance(doc, dict) and doc.get("kind") == "Service":
                ports = (doc.get("spec") or {}).get("ports") or []
                return doc.get("metadata", {}).get("name"), (ports[0].get("port") if ports else None)
    except yaml.YAMLError:
        pass
    return None, None


def http_probe(environment, deployment, timeout=None):
    """GET the service's health path through its Service: (ok, detail, latency_ms).

    Raises kube.KubeError only when the cluster itself cannot be reached (not for a slow service).
    """
    name, port = service_endpoint(deployment)
    if name is None:
        return True, "no Service in the manifests: replicas only", None
    path = deployment.service.health_path or "/"
    timeout = timeout or probe_timeout()
    started = time.monotonic()
    try:
        ok, detail = kube.probe_service(environment.cluster, environment.namespace, name, port, path, timeout=(min(timeout, 5), timeout))
    except kube.KubeError as error:
        if error.reason != "Timeout":
            raise
        return False, f"no answer within {timeout:g} s", int(timeout * 1000)
    return ok, detail, int((time.monotonic() - started) * 1000)


def decide(replica_status, replica_detail, ok, detail, failures, threshold, path):
    """The cell's status and reason from the replicas and the health path (``failures`` counts this probe)."""
    if replica_status == "down":
        return "down", replica_detail or "no replica ready"
    if not ok:
        times = {1: "once", 2: "twice"}.get(failures, f"{failures} times")
        if replica_status == "progressing":
            return "progressing", f"{path} answered {detail} while rolling out"
        if failures >= threshold:
            return "down", f"{path} answered {detail} {times} in a row"
        return "degraded", f"{path} answered {detail} ({times} in a row; down at {threshold})"
    return replica_status, replica_detail


def probe_cell(environment, deployment, previous_failures, threshold):
    """One probe of one service in one environment: replicas and live colour, then the health path."""
    from deployments.health import check_service

    path = deployment.service.health_path or "/"
    try:
        replica_status, ready, desired, color, replica_detail = check_service(environment, deployment)
        ok, detail, latency = http_probe(environment, deployment)
    except kube.KubeError as error:
        return Outcome(environment.pk, deployment.service_id, deployment.pk, "unknown", f"cluster not reachable: {error}"[:500],
                       False, None)
    failures = 0 if ok else previous_failures + 1
    status, reason = decide(replica_status, replica_detail, ok, detail, failures, threshold, path)
    return Outcome(environment.pk, deployment.service_id, deployment.pk, status, reason[:500], ok, latency, ready, desired, color)


def _live_deployments(environment):
    from deployments.live import live_and_rollback_targets

    return [pair[0] for pair in live_and_rollback_targets(environment.pk, depth=3, with_manifests=True).values()]


def probe_environments(environment_ids, now=None):
    """Probe every live service of the given environments (one shard). Returns the Outcomes."""
    from environments.models import Environment

    from .config import settings_for_many

    environments = list(Environment.objects.select_related("cluster").filter(pk__in=environment_ids, cluster__isnull=False))
    thresholds = {env.pk: s.failure_threshold for env, s in zip(environments, settings_for_many(environments), strict=False)}
    cells = {(c.environment_id, c.service_id): c for c in CellHealth.objects.filter(environment_id__in=environment_ids)}
    work = []
    for environment in environments:
        for deployment in _live_deployments(environment):
            previous = cells.get((environment.pk, deployment.service_id))
            work.append((environment, deployment, previous.consecutive_failures if previous else 0))
    outcomes = []
    if work:
        with ThreadPoolExecutor(max_workers=min(parallelism(), len(work)), thread_name_prefix="probe") as pool:
            futures = [pool.submit(probe_cell, env, dep, failures, thresholds[env.pk]) for env, dep, failures in work]
            outcomes = [future.result() for future in futures]
    live_keys = {(env.pk, dep.service_id) for env, dep, _ in work}
    record_outcomes(outcomes, cells, now=now)
    stale = [c.pk for key, c in cells.items() if key not in live_keys]
    if stale:  # nothing runs there any more: the cell leaves the board
        CellHealth.objects.filter(pk__in=stale).delete()
    return outcomes


def record_outcomes(outcomes, cells=None, now=None):
    """Write the probes: raw checks, minute aggregates, the cells, and one change row per status change."""
    if not outcomes:
        return
    now = now or timezone.now()
    if cells is None:
        keys = {(o.environment_id, o.service_id) for o in outcomes}
        cells = {(c.environment_id, c.service_id): c for c in CellHealth.objects.filter(
            environment_id__in={k[0] for k in keys}, service_id__in={k[1] for k in keys})}
    with transaction.atomic():
        HealthCheck.objects.bulk_create([
            HealthCheck(environment_id=o.environment_id, service_id=o.service_id, at=now, status=o.status, ok=o.ok,
                        latency_ms=o.latency_ms, detail=o.reason[:300]) for o in outcomes])
        _aggregate(outcomes, now)
        for outcome in outcomes:
            _update_cell(cells.get((outcome.environment_id, outcome.service_id)), outcome, now)


# One statement, no formatting (PostgreSQL and SQLite): the worst status of the minute wins (down > degraded > unknown > progressing).
_ADD_TO_MINUTE = """
INSERT INTO monitoring_healthminute
    (environment_id, service_id, minute, checks, failures, latency_ms_sum, latency_ms_max, worst)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (environment_id, service_id, minute) DO UPDATE SET
    checks = monitoring_healthminute.checks + excluded.checks,
    failures = monitoring_healthminute.failures + excluded.failures,
    latency_ms_sum = monitoring_healthminute.latency_ms_sum + excluded.latency_ms_sum,
    latency_ms_max = CASE WHEN excluded.latency_ms_max > monitoring_healthminute.latency_ms_max
        THEN excluded.latency_ms_max ELSE monitoring_healthminute.latency_ms_max END,
    worst = CASE
        WHEN monitoring_healthminute.worst = 'down' OR excluded.worst = 'down' THEN 'down'
        WHEN monitoring_healthminute.worst = 'degraded' OR excluded.worst = 'degraded' THEN 'degraded'
        WHEN monitoring_healthminute.worst = 'unknown' OR excluded.worst = 'unknown' THEN 'unknown'
        WHEN monitoring_healthminute.worst = 'progressing' OR excluded.worst = 'progressing' THEN 'progressing'
        ELSE 'healthy' END
"""


def _aggregate(outcomes, now):
    minute = now.replace(second=0, microsecond=0)
    rows = [(o.environment_id, o.service_id, minute, 1, 0 if o.ok else 1, o.latency_ms or 0, o.latency_ms or 0, o.status)
            for o in outcomes]
    with connection.cursor() as cursor:
        cursor.executemany(_ADD_TO_MINUTE, rows)


def _update_cell(cell, outcome, now):
    failures = 0 if outcome.ok else (cell.consecutive_failures + 1 if cell else 1)
    if cell is None:
        cell = CellHealth.objects.create(
            environment_id=outcome.environment_id, service_id=outcome.service_id, deployment_id=outcome.deployment_id,
            status=outcome.status, reason=outcome.reason, since=now, checked_at=now, consecutive_failures=failures,
            latency_ms=outcome.latency_ms, color=outcome.color, ready_replicas=outcome.ready,
            desired_replicas=outcome.desired, version=1, changed_at=now)
        _change(cell, "unknown", outcome, now)
        return cell
    old_status = cell.status
    visible = (cell.status, cell.reason, cell.deployment_id, cell.color) != (outcome.status, outcome.reason, outcome.deployment_id, outcome.color)
    fields = {"checked_at": now, "consecutive_failures": failures, "latency_ms": outcome.latency_ms,
              "ready_replicas": outcome.ready, "desired_replicas": outcome.desired, "status": outcome.status,
              "reason": outcome.reason, "deployment_id": outcome.deployment_id, "color": outcome.color}
    if outcome.status != old_status:
        fields["since"] = now
    if visible:
        fields["version"], fields["changed_at"] = cell.version + 1, now
    CellHealth.objects.filter(pk=cell.pk).update(**fields)
    for key, value in fields.items():
        setattr(cell, key, value)
    if outcome.status != old_status:
        _change(cell, old_status, outcome, now)
    return cell


def _change(cell, old_status, outcome, now):
    HealthChange.objects.create(environment_id=cell.environment_id, service_id=cell.service_id, at=now,
                                from_status=old_status, to_status=outcome.status, reason=outcome.reason)
    record("health.changed", actor_name="gantry-probe", target=cell.service, environment=cell.environment,
           changes={"status": [old_status, outcome.status]}, detail={"reason": outcome.reason})


# --- periodic -----------------------------------------------------------------------------------


def shard_size():
    return max(1, int(getattr(settings, "GANTRY_PROBE_SHARD_SIZE", 10)))


def shards():
    """Ready environments on a cluster, in shards of GANTRY_PROBE_SHARD_SIZE."""
    from environments.models import Environment

    ids = list(Environment.objects.filter(status="ready", cluster__isnull=False).order_by("pk").values_list("pk", flat=True))
    size = shard_size()
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def probe_all():
    """Periodic (queue ``health``): enqueue one probe job per shard of environments; returns the shard count."""
    import django_rq

    queue = django_rq.get_queue("health")
    parts = shards()
    for part in parts:
        queue.enqueue("deployments.monitoring.probing.probe_shard", part, job_timeout=max(60, int(probe_timeout() * 6)),
                      result_ttl=60, failure_ttl=3600)
    return len(parts)


def probe_shard(environment_ids):
    """One RQ job: probe one shard of environments."""
    return len(probe_environments(environment_ids))
