"""Plain-dict views of backup targets, backups, drills and restores (never a DSN or a credential)."""
from typing import Any, Literal

from django.utils import timezone

from portal.schema_types import OptionalTimestamp, Out, Timestamp, iso

from . import policies, services


def destination_out(target):
    dest = dict(target.destination)
    if dest.get("kind") == "s3":
        dest["has_credentials"] = bool(target.credentials_encrypted)
    return dest


def target_out(target, last_good=None, last_drill=None, now=None):
    now = now or timezone.now()
    last_good_at = last_good.finished_at if last_good else None
    return {
        "id": target.pk,
        "environment": target.environment.slug,
        "name": target.name,
        "kind": target.kind,
        "database": target.dsn_display,
        "has_dsn": bool(target.dsn_encrypted),
        "schedule": target.schedule,
        "timezone": target.timezone,
        "retention_days": target.retention_days,
        "keep_last": target.keep_last,
        "destination": destination_out(target),
        "rpo_minutes": target.rpo_minutes,
        "rto_minutes": target.rto_minutes,
        "verify_schedule": target.verify_schedule or None,
        "verify_sql": target.verify_sql or None,
        "deploy_guard": target.deploy_guard,
        "deploy_guard_minutes": target.deploy_guard_minutes,
        "enabled": target.enabled,
        "warning": services.warning_for(target),
        "rpo_status": policies.rpo_color(last_good_at, target.rpo_minutes, now),
        "last_good_backup_at": iso(last_good_at),
        "last_drill": drill_summary(last_drill),
        "created_at": iso(target.created_at),
    }


def drill_summary(drill):
    if drill is None:
        return None
    return {"id": drill.pk, "state": drill.state, "restore_seconds": drill.restore_seconds,
            "finished_at": iso(drill.finished_at)}


def backup_out(backup, last_drill=None):
    duration = backup.duration
    return {
        "id": backup.pk,
        "target": backup.target.name,
        "environment": backup.target.environment.slug,
        "state": backup.state,
        "trigger": backup.trigger,
        "requested_by": backup.requested_by.get_username() if backup.requested_by_id else None,
        "size_bytes": backup.size_bytes,
        "bytes_done": backup.bytes_done,
        "sha256": backup.sha256 or None,
        "location": backup.location or None,
        "created_at": iso(backup.created_at),
        "started_at": iso(backup.started_at),
        "finished_at": iso(backup.finished_at),
        "duration_seconds": duration.total_seconds() if duration else None,
        "error": backup.error or None,
        "job": str(backup.job_id) if backup.job_id else None,
        "row_counts": backup.row_counts or None,
        "last_drill": drill_summary(last_drill),
    }


def drill_out(drill):
    return {
        "id": drill.pk,
        "drill": drill.pk,
        "backup": drill.backup_id,
        "state": drill.state,
        "trigger": drill.trigger,
        "restore_seconds": drill.restore_seconds,
        "checks": drill.checks,
        "error": drill.error or None,
        "created_at": iso(drill.created_at),
        "started_at": iso(drill.started_at),
        "finished_at": iso(drill.finished_at),
        "job": str(drill.job_id) if drill.job_id else None,
    }


def restore_out(restore):
    return {
        "id": restore.pk,
        "backup": restore.backup_id,
        "state": restore.state,
        "into": restore.destination_display,
        "database": restore.database or None,
        "allow_existing": restore.allow_existing,
        "requested_by": restore.requested_by.get_username() if restore.requested_by_id else None,
        "approvals": restore.approvals,
        "restore_seconds": restore.restore_seconds,
        "error": restore.error or None,
        "created_at": iso(restore.created_at),
        "finished_at": iso(restore.finished_at),
        "job": str(restore.job_id) if restore.job_id else None,
    }


# ---------------------------------------------------------------- response schemas (the OpenAPI document)
# Each mirrors the dict its function above returns, key for key (portal.schema_types.Out forbids others).

class DrillSummaryOut(Out):
    id: int
    state: str
    restore_seconds: float | None
    finished_at: OptionalTimestamp


class TargetOut(Out):
    """`target_out(...)`: a backup target, its schedule and its recovery status (never the DSN itself)."""

    id: int
    environment: str
    name: str
    kind: str
    database: str
    has_dsn: bool
    schedule: str
    timezone: str
    retention_days: int
    keep_last: int
    destination: dict[str, Any]
    rpo_minutes: int
    rto_minutes: int
    verify_schedule: str | None
    verify_sql: str | None
    deploy_guard: str
    deploy_guard_minutes: int
    enabled: bool
    warning: str | None
    rpo_status: str
    last_good_backup_at: OptionalTimestamp
    last_drill: DrillSummaryOut | None
    created_at: Timestamp


class BackupOut(Out):
    id: int
    target: str
    environment: str
    state: str
    trigger: str
    requested_by: str | None
    size_bytes: int | None
    bytes_done: int
    sha256: str | None
    location: str | None
    created_at: Timestamp
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp
    duration_seconds: float | None
    error: str | None
    job: str | None
    row_counts: dict[str, int] | None
    last_drill: DrillSummaryOut | None


class DrillCheckOut(Out):
    name: str
    ok: bool
    detail: str


class DrillOut(Out):
    id: int
    drill: int
    backup: int
    state: str
    trigger: str
    restore_seconds: float | None
    checks: list[DrillCheckOut]
    error: str | None
    created_at: Timestamp
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp
    job: str | None


class RestoreDecisionOut(Out):
    """An approval or rejection of a production restore (`restore_approvals._record_decision`)."""

    user: str
    user_id: int
    decision: str
    comment: str
    at: Timestamp


class RestoreOut(Out):
    id: int
    backup: int
    state: str
    into: str
    database: str | None
    allow_existing: bool
    requested_by: str | None
    approvals: list[RestoreDecisionOut]
    restore_seconds: float | None
    error: str | None
    created_at: Timestamp
    finished_at: OptionalTimestamp
    job: str | None


class RestoreRequestOut(RestoreOut):
    """A production restore in the approvals inbox (`kind` `restore`): what is restored, and where."""

    kind: Literal["restore"]
    environment: str
    target: str
    source: str
    backup_size_bytes: int | None
    backup_taken_at: OptionalTimestamp
    backup_sha256: str | None
    requested_at: Timestamp
    approvals_required: int
    approvals_valid: int
