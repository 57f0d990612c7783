"""Probing: every service of every environment, concurrently, with bounded parallelism and timeouts.

The periodic ``probe_all`` only splits the work: environments go into shards, one RQ job per
shard on the ``health`` queue, so adding workers adds probing capacity. A shard reads each of its
namespaces once (Deployments, pods, and Services where a blue-green service runs:
``deployments.health.read_namespace``) and probes the health path of every cell, all of it in one
thread pool (``GANTRY_PROBE_PARALLELISM``); each probe has its own timeout
(``GANTRY_PROBE_TIMEOUT_SECONDS``), so one slow or dead endpoint delays nobody else. Threads only
talk to the cluster; the database is written afterwards by the shard's own thread, in bulk and in
one transaction: the raw checks, the per-minute aggregates, the cells, and for the cells whose
status changed one HealthChange row and one audit event each.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import django_rq
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rq.job import JobStatus

from deployments import health
from deployments.live import live_deployments
from deployments.models import Deployment, Service
from environments.models import Environment
from portal import kube
from portal.audit.services import record_many

from . import restarts as restart_window
from .config import settings_for_many
from .models import CellHealth, HealthChange, HealthCheck

ORDER = health.ORDER
PROBE_LOCK = 0x6770  # "gp": first key of the per-environment advisory lock of the probe's writes


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
    restarts: restart_window.Restarts | None = None  # the live pods' container restarts, over the window


def parallelism():
    return max(1, settings.GANTRY_PROBE_PARALLELISM)


def probe_timeout():
    return settings.GANTRY_PROBE_TIMEOUT_SECONDS


def service_endpoint(deployment):
    """(Service name, port) of the release's manifests: where its health path is probed, or (None, None)."""
    return health.workload_of(deployment).endpoint


def http_probe(environment, deployment, timeout=None, endpoint=None):
    """GET the service's health path through its Service: (ok, detail, latency_ms).

    Raises kube.KubeError only when the cluster itself cannot be reached (not for a slow service).
    """
    name, port = endpoint or service_endpoint(deployment)
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
        said = f"{path} gave {detail}" if detail.startswith("no answer") else f"{path} answered {detail}"
        if replica_status == "progressing":
            return "progressing", f"{said} while rolling out"
        if failures >= threshold:
            return "down", f"{said} {times} in a row"
        return "degraded", f"{said} ({times} in a row; down at {threshold})"
    return replica_status, replica_detail


def judge(environment, deployment, workload, snapshot, answer, previous_failures, threshold, restarts_before=(None, None), now=None):
    """The Outcome of one cell from its namespace's snapshot and its health-path answer.

    ``snapshot`` and ``answer`` are what read_namespace and http_probe returned, or the KubeError
    they raised: the cell is then ``unknown``. ``restarts_before``: the cell's (restarts, restart_log).
    """
    for result in (snapshot, answer):
        if isinstance(result, kube.KubeError):
            return Outcome(environment.pk, deployment.service_id, deployment.pk, "unknown", f"cluster not reachable: {result}"[:500],
                           False, None)
    seen = health.observe(snapshot, workload)
    ok, detail, latency = answer
    failures = 0 if ok else previous_failures + 1
    status, reason = decide(seen.status, seen.detail, ok, detail, failures, threshold, deployment.service.health_path or "/")
    restarts = restart_window.count(*restarts_before, seen.restarts, now or timezone.now())
    status, reason = restart_window.apply(status, reason, restarts)
    return Outcome(environment.pk, deployment.service_id, deployment.pk, status, reason[:500], ok, latency, seen.ready,
                   seen.desired, seen.color, restarts)


def _capture(fn, *args, **kwargs):
    """fn's result, or the KubeError it raised (threads hand failures back as values)."""
    try:
        return fn(*args, **kwargs)
    except kube.KubeError as error:
        return error


def probe_cell(environment, deployment, previous_failures, threshold, now=None):
    """One probe of one service in one environment (a verification step): replicas, live colour and
    restarts (counted against the board's cell), then the health path."""
    workload = health.workload_of(deployment)
    snapshot = _capture(health.read_workload, environment.cluster, environment.namespace, workload)
    answer = _capture(http_probe, environment, deployment, endpoint=workload.endpoint) \
        if not isinstance(snapshot, kube.KubeError) else snapshot
    cell = CellHealth.objects.filter(environment_id=environment.pk, service_id=deployment.service_id).only(
        "deployment_id", "restarts", "restart_log").first()
    return judge(environment, deployment, workload, snapshot, answer, previous_failures, threshold,
                 restarts_of(cell, deployment), now)


def restarts_of(cell, deployment):
    """The cell's (restarts, restart_log) while it still shows this deployment; a newly live one (other
    pods, or another colour's) starts without a baseline."""
    if cell is None or cell.deployment_id != deployment.pk:
        return None, None
    return cell.restarts, cell.restart_log


def _workloads(work, cells):
    """Each (environment, deployment)'s Workload: the cell's copy while the same deployment runs, else
    read from the manifests (fetched only for those)."""

    found, missing = {}, []
    for environment, deployment in work:
        cell = cells.get((environment.pk, deployment.service_id))
        cached = cell.workload if cell else None
        if cached and cached.get("deployment") == deployment.pk and cached.get("strategy") == deployment.service.strategy:
            found[deployment.pk] = health.Workload.from_dict(cached)
        else:
            missing.append(deployment)
    if missing:
        texts = dict(Deployment.objects.filter(pk__in=[d.pk for d in missing]).values_list("pk", "rendered_manifest"))
        for deployment in missing:
            deployment.rendered_manifest = texts.get(deployment.pk) or ""
            found[deployment.pk] = health.workload_of(deployment)
    return [found[deployment.pk] for _, deployment in work]


def probe_environments(environment_ids, now=None):
    """Probe every live service of the given environments (one shard). Returns the Outcomes."""

    now = now or timezone.now()
    environments = list(Environment.objects.select_related("cluster").filter(pk__in=environment_ids, cluster__isnull=False))
    thresholds = {env.pk: s.failure_threshold for env, s in zip(environments, settings_for_many(environments), strict=False)}
    cells = {(c.environment_id, c.service_id): c for c in CellHealth.objects.filter(environment_id__in=environment_ids)}

    by_pk = {environment.pk: environment for environment in environments}
    pairs = [(by_pk[deployment.environment_id], deployment) for deployment in live_deployments(by_pk)]
    work = [(env, dep, workload) for (env, dep), workload in zip(pairs, _workloads(pairs, cells), strict=True)]
    outcomes = []
    if work:
        namespaces = {}
        for environment, _, workload in work:
            namespaces.setdefault(environment.pk, [environment, False])[1] |= workload.blue_green is not None
        with ThreadPoolExecutor(max_workers=min(parallelism(), len(work) + len(namespaces)), thread_name_prefix="probe") as pool:
            # The namespace reads go first in the queue: a few list requests, then every health path.
            reads = {pk: pool.submit(_capture, health.read_namespace, env.cluster, env.namespace, services)
                     for pk, (env, services) in namespaces.items()}
            # Slowest first (by the last probe's latency; a timeout counts as the whole timeout): the
            # endpoints that hold a thread longest start at once, and the quick ones fill in around them,
            # so a shard lasts about one timeout rather than a queue's wait plus one.

            def last_latency(index):
                previous = cells.get((work[index][0].pk, work[index][1].service_id))
                return (previous.latency_ms or 0) if previous else 0

            answers = [None] * len(work)
            for index in sorted(range(len(work)), key=last_latency, reverse=True):
                env, dep, workload = work[index]
                answers[index] = pool.submit(_capture, http_probe, env, dep, endpoint=workload.endpoint)
            for (env, dep, workload), answer in zip(work, answers, strict=True):
                previous = cells.get((env.pk, dep.service_id))
                outcomes.append(judge(env, dep, workload, reads[env.pk].result(), answer.result(),
                                      previous.consecutive_failures if previous else 0, thresholds[env.pk],
                                      restarts_of(previous, dep), now))
    live_keys = {(env.pk, dep.service_id) for env, dep, _ in work}
    names = {(env.pk, dep.service_id): (env, dep.service) for env, dep, _ in work}
    workloads = {dep.pk: {**workload.as_dict(), "deployment": dep.pk, "strategy": dep.service.strategy} for _, dep, workload in work}
    record_outcomes(outcomes, now=now, names=names, workloads=workloads)
    stale = [c.pk for key, c in cells.items() if key not in live_keys]
    if stale:  # nothing runs there any more: the cell leaves the board
        CellHealth.objects.filter(pk__in=stale).delete()
    return outcomes


def record_outcomes(outcomes, now=None, names=None, workloads=None):
    """Write the probes in bulk: raw checks, minute aggregates, the cells, and one change row per status change.

    Writers of the same environment (a shard job, the deploy job's probe, ``refresh=true``) take
    turns (a transaction-level advisory lock per environment) and each compares with the cells as
    the previous one left them, so a change is written once and a new cell created once.
    ``names``: {(environment_id, service_id): (Environment, Service)} for the audit events (read when missing);
    ``workloads``: {deployment_id: Workload JSON} kept on the cells.
    """
    if not outcomes:
        return
    now = now or timezone.now()
    keys = {(o.environment_id, o.service_id) for o in outcomes}
    environment_ids = sorted({k[0] for k in keys})
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for environment_id in environment_ids:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [PROBE_LOCK, environment_id])
        cells = {(c.environment_id, c.service_id): c for c in CellHealth.objects.filter(environment_id__in=environment_ids)}
        created, updated, changes = [], [], []
        for outcome in outcomes:
            cell = cells.get((outcome.environment_id, outcome.service_id))
            workload = (workloads or {}).get(outcome.deployment_id)
            if cell is None:
                cell = _new_cell(outcome, now)
                cell.workload = workload or {}
                created.append(cell)
                changes.append((cell, "unknown", outcome))
                continue
            old_status = cell.status
            _apply(cell, outcome, now)
            if workload is not None:
                cell.workload = workload
            updated.append(cell)
            if outcome.status != old_status:
                changes.append((cell, old_status, outcome))
        HealthCheck.objects.bulk_create([
            HealthCheck(environment_id=o.environment_id, service_id=o.service_id, at=now, status=o.status, ok=o.ok,
                        latency_ms=o.latency_ms, detail=o.reason[:300]) for o in outcomes], batch_size=1000)
        _aggregate(outcomes, now)
        CellHealth.objects.bulk_create(created, batch_size=1000)
        _update_cells(updated)
        if changes:
            _changes(changes, now, names or {})


# Constant statements (no SQL is built from strings); each row is a position in the array parameters.
# The worst status of the minute wins (down > degraded > unknown > progressing > healthy).
_ADD_TO_MINUTES = """
INSERT INTO monitoring_healthminute
    (environment_id, service_id, minute, checks, failures, latency_ms_sum, latency_ms_max, worst)
SELECT environment_id, service_id, %s, 1, failures, latency_ms, latency_ms, worst
FROM unnest(%s::bigint[], %s::bigint[], %s::integer[], %s::integer[], %s::varchar[])
    AS probe (environment_id, service_id, failures, latency_ms, worst)
"""
# Without arrays (the demo's SQLite): the same upsert, one row of values at a time.
_ADD_ONE_TO_MINUTES = """
INSERT INTO monitoring_healthminute
    (environment_id, service_id, minute, checks, failures, latency_ms_sum, latency_ms_max, worst)
VALUES (%s, %s, %s, 1, %s, %s, %s, %s)
"""
_ADDED_TO_A_MINUTE = """
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
    """Add the probes to their per-minute aggregates: one upsert statement per shard."""
    minute = now.replace(second=0, microsecond=0)
    if connection.vendor != "postgresql":
        stored = connection.ops.adapt_datetimefield_value(minute)  # as the ORM stores it, so the minute matches
        with connection.cursor() as cursor:
            cursor.executemany(_ADD_ONE_TO_MINUTES + _ADDED_TO_A_MINUTE, [
                (o.environment_id, o.service_id, stored, 0 if o.ok else 1, o.latency_ms or 0, o.latency_ms or 0, o.status)
                for o in outcomes])
        return
    with connection.cursor() as cursor:
        cursor.execute(_ADD_TO_MINUTES + _ADDED_TO_A_MINUTE, [
            minute, [o.environment_id for o in outcomes], [o.service_id for o in outcomes], [0 if o.ok else 1 for o in outcomes],
            [o.latency_ms or 0 for o in outcomes], [o.status for o in outcomes]])


def _new_cell(outcome, now):
    return CellHealth(
        environment_id=outcome.environment_id, service_id=outcome.service_id, deployment_id=outcome.deployment_id,
        status=outcome.status, reason=outcome.reason, since=now, checked_at=now, consecutive_failures=0 if outcome.ok else 1,
        latency_ms=outcome.latency_ms, color=outcome.color, ready_replicas=outcome.ready,
        desired_replicas=outcome.desired, version=1, changed_at=now,
        restarts=outcome.restarts.total if outcome.restarts else None,
        restart_log=outcome.restarts.log if outcome.restarts else [])


def _apply(cell, outcome, now):
    """Bring a cell (in memory) up to this probe; the version moves only when the board must redraw it."""
    visible = (cell.status, cell.reason, cell.deployment_id, cell.color) != (outcome.status, outcome.reason, outcome.deployment_id, outcome.color)
    if outcome.status != cell.status:
        cell.since = now
    if visible:
        cell.version, cell.changed_at = cell.version + 1, now
    cell.checked_at, cell.latency_ms = now, outcome.latency_ms
    cell.consecutive_failures = 0 if outcome.ok else cell.consecutive_failures + 1
    cell.ready_replicas, cell.desired_replicas = outcome.ready, outcome.desired
    cell.status, cell.reason, cell.deployment_id, cell.color = outcome.status, outcome.reason, outcome.deployment_id, outcome.color
    if outcome.restarts is not None:
        cell.restarts, cell.restart_log = outcome.restarts.total, outcome.restarts.log


CELL_FIELDS = ("checked_at", "since", "changed_at", "version", "consecutive_failures", "latency_ms", "ready_replicas",
               "desired_replicas", "status", "reason", "deployment_id", "color", "restarts", "restart_log", "workload")
JSON_FIELDS = ("restart_log", "workload")
_UPDATE_CELLS = """
UPDATE monitoring_cellhealth AS cell SET
    checked_at = probe.checked_at, since = probe.since, changed_at = probe.changed_at, version = probe.version,
    consecutive_failures = probe.consecutive_failures, latency_ms = probe.latency_ms,
    ready_replicas = probe.ready_replicas, desired_replicas = probe.desired_replicas, status = probe.status,
    reason = probe.reason, deployment_id = probe.deployment_id, color = probe.color, restarts = probe.restarts,
    restart_log = probe.restart_log::jsonb, workload = probe.workload::jsonb
FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::bigint[], %s::integer[],
            %s::integer[], %s::integer[], %s::integer[], %s::varchar[], %s::varchar[], %s::bigint[], %s::varchar[],
            %s::integer[], %s::text[], %s::text[])
    AS probe (id, checked_at, since, changed_at, version, consecutive_failures, latency_ms, ready_replicas,
              desired_replicas, status, reason, deployment_id, color, restarts, restart_log, workload)
WHERE cell.id = probe.id
"""


def _update_cells(cells):
    """Every probed cell in one UPDATE (PostgreSQL); one UPDATE per cell elsewhere."""
    if not cells:
        return
    if connection.vendor != "postgresql":
        for cell in cells:
            CellHealth.objects.filter(pk=cell.pk).update(**{name: getattr(cell, name) for name in CELL_FIELDS})
        return
    with connection.cursor() as cursor:
        columns = [[json.dumps(getattr(cell, name)) if name in JSON_FIELDS else getattr(cell, name) for cell in cells]
                   for name in CELL_FIELDS]
        cursor.execute(_UPDATE_CELLS, [[cell.pk for cell in cells], *columns])


def _changes(changes, now, names):
    """One HealthChange row and one audit event per status change, in bulk."""

    missing = [(c.environment_id, c.service_id) for c, _, _ in changes if (c.environment_id, c.service_id) not in names]
    if missing:
        envs = Environment.objects.in_bulk({k[0] for k in missing})
        services = Service.objects.in_bulk({k[1] for k in missing})
        names = {**names, **{k: (envs[k[0]], services[k[1]]) for k in missing}}
    HealthChange.objects.bulk_create([
        HealthChange(environment_id=cell.environment_id, service_id=cell.service_id, at=now, from_status=old_status,
                     to_status=outcome.status, reason=outcome.reason) for cell, old_status, outcome in changes])
    events = []
    for cell, old_status, outcome in changes:
        environment, service = names[(cell.environment_id, cell.service_id)]
        events.append({"action": "health.changed", "actor_name": "gantry-probe", "target": service, "environment": environment,
                       "changes": {"status": [old_status, outcome.status]}, "detail": {"reason": outcome.reason}})
    record_many(events)


# --- periodic -----------------------------------------------------------------------------------


def shard_size():
    return max(1, settings.GANTRY_PROBE_SHARD_SIZE)


def shards():
    """Ready environments on a cluster, in shards of GANTRY_PROBE_SHARD_SIZE."""

    ids = list(Environment.objects.filter(status="ready", cluster__isnull=False).order_by("pk").values_list("pk", flat=True))
    size = shard_size()
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def shard_job_id(environment_ids):
    """The RQ id of a shard's probe job: the same shard gets the same id from one cycle to the next."""

    digest = hashlib.sha256(",".join(map(str, environment_ids)).encode()).hexdigest()[:16]
    return f"probe-shard-{digest}"


def probe_all():
    """Periodic (queue ``health``): enqueue one probe job per shard of environments; returns the shard
    count sent. A shard whose job from an earlier cycle is still waiting or running is not sent again
    (a cycle that overruns its interval must not pile jobs up on the queue); that is logged."""

    pending = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
    queue = django_rq.get_queue("health")
    sent = skipped = 0
    for part in shards():
        job_id = shard_job_id(part)
        earlier = queue.fetch_job(job_id)
        if earlier is not None and earlier.get_status(refresh=False) in pending:
            skipped += 1
            continue
        queue.enqueue("deployments.monitoring.probing.probe_shard", part, job_id=job_id,
                      job_timeout=max(60, int(probe_timeout() * 6)), result_ttl=60, failure_ttl=3600)
        sent += 1
    if skipped:
        logging.getLogger("gantry.health").warning(
            "probe cycle: %d shard(s) still waiting or running from an earlier cycle; not sent again", skipped)
    return sent


def probe_shard(environment_ids):
    """One RQ job: probe one shard of environments."""
    return len(probe_environments(environment_ids))
