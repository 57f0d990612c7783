"""Backup targets, backups, drills and restores: every change goes through these functions.

`set_state` is the one writer of the three state machines (choices.py): it checks the
transition, saves, and audits in one transaction.
"""
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import pgtools
from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, NotFound, deny
from portal.jobs.services import enqueue_job
from portal.validation import check_dns_label

from . import policies
from .choices import (BACKUP_TRANSITIONS, DRILL_TRANSITIONS, RESTORE_TRANSITIONS, BackupState, DrillState,
                      RestoreState)
from .models import Backup, BackupTarget, Drill, Restore
from .schedule import valid_cron, valid_timezone

TRANSITIONS = {Backup: BACKUP_TRANSITIONS, Drill: DRILL_TRANSITIONS, Restore: RESTORE_TRANSITIONS}
ACTION_PREFIX = {Backup: "backup", Drill: "backup.drill", Restore: "backup.restore"}


class TransitionError(Conflict):
    pass


def set_state(obj, new_state, *, actor=None, actor_name="gantry-worker", request=None, detail=None, **fields):
    """Move a backup, drill or restore to `new_state` (checked against its table), save `fields` with it,
    and audit it, all in one transaction. Returns the fresh row."""
    model = type(obj)
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=obj.pk)
        allowed = TRANSITIONS[model][row.state]
        if new_state not in allowed:
            raise TransitionError(f"{row} is {row.state} and cannot become {new_state}")
        previous = row.state
        row.state = new_state
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()
        target = row if model is not Backup else row
        env = _environment_of(row)
        record(f"{ACTION_PREFIX[model]}.{new_state}", actor=actor, actor_name=actor_name, request=request,
               target=target, environment=env,
               outcome="failure" if new_state == "failed" else "success",
               detail={"from": previous, **(detail or {}), **({"error": fields["error"][:500]} if fields.get("error") else {})})
    return row


def _environment_of(row):
    if isinstance(row, Backup):
        return row.target.environment
    return row.backup.target.environment


# ---------------------------------------------------------------- targets

def default_local_path():
    return str(settings.GANTRY_BACKUP_DIR)


def _clean_destination(value, errors, instance=None):
    if value is None:
        if instance is not None:
            return instance.destination, None
        return {"kind": "local", "path": default_local_path()}, None
    if not isinstance(value, dict):
        errors.append('destination: give {"kind": "local", "path": ...} or {"kind": "s3", "bucket": ..., ...}')
        return {}, None
    kind = value.get("kind")
    if kind == "local":
        import os

        path = value.get("path") or default_local_path()
        if not isinstance(path, str) or not os.path.isabs(path):
            errors.append(f"destination.path: '{path}' must be an absolute directory on the worker")
        unknown = set(value) - {"kind", "path"}
        if unknown:
            errors.append(f"destination: unknown field(s) for a local directory: {', '.join(sorted(unknown))}")
        # a target that moves from S3 to a directory drops its S3 keys
        return {"kind": "local", "path": path}, ({} if instance is not None and instance.credentials_encrypted else None)
    if kind == "s3":
        allowed = {"kind", "bucket", "prefix", "endpoint_url", "region", "access_key_id", "secret_access_key"}
        unknown = set(value) - allowed
        if unknown:
            errors.append(f"destination: unknown field(s) for S3: {', '.join(sorted(unknown))}")
        bucket = value.get("bucket")
        if not isinstance(bucket, str) or not (3 <= len(bucket) <= 63):
            errors.append("destination.bucket: an S3 bucket name (3 to 63 characters) is required")
        endpoint = value.get("endpoint_url") or ""
        if endpoint and (not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))):
            errors.append(f"destination.endpoint_url: '{endpoint}' is not an http(s) URL")
        for name in ("prefix", "region", "access_key_id", "secret_access_key"):
            if value.get(name) is not None and not isinstance(value.get(name), str):
                errors.append(f"destination.{name}: must be text")
        clean = {"kind": "s3", "bucket": bucket, "prefix": (value.get("prefix") or "").strip("/"),
                 "endpoint_url": endpoint, "region": value.get("region") or ""}
        credentials = None
        if value.get("access_key_id") or value.get("secret_access_key"):
            # write-only: a key left out keeps its stored value
            stored = instance.credentials if instance is not None else {}
            credentials = {name: value.get(name) or stored.get(name, "")
                           for name in ("access_key_id", "secret_access_key")}
        return clean, credentials
    errors.append(f"destination.kind: '{kind}' is not one of: local, s3")
    return {}, None


def _positive(data, name, errors, default, minimum=1, maximum=10**6):
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not (minimum <= value <= maximum):
        errors.append(f"{name}: a whole number from {minimum} to {maximum}")
        return default
    return value


def _clean_dsn(dsn, clean, errors):
    if not isinstance(dsn, str) or not dsn.strip():
        errors.append("dsn: the database's connection string is required (postgres://user:password@host:5432/db)")
        return
    try:
        parts = pgtools.parse_dsn(dsn.strip())
        if not parts.get("dbname"):
            errors.append("dsn: name the database (postgres://user:password@host:5432/DATABASE)")
        clean["dsn"] = dsn.strip()
    except pgtools.PgToolError as exc:
        errors.append(f"dsn: {exc}")


def clean_target(environment, data, instance=None):
    """Validate a target's fields; raise InvalidInput with every problem at once."""
    errors = []
    current = (lambda name, default: getattr(instance, name) if instance is not None else default)
    clean = {}
    clean["name"] = check_dns_label(data.get("name", current("name", None)), "name", errors)
    kind = data.get("kind", "postgresql")
    if kind != "postgresql":
        errors.append(f"kind: '{kind}' is not supported; use postgresql")
    if "dsn" in data or instance is None:
        _clean_dsn(data.get("dsn"), clean, errors)
    env_zone = getattr(environment, "timezone", "") or settings.TIME_ZONE
    for name, default in (("schedule", "0 3 * * *"), ("verify_schedule", "")):
        value = data.get(name, current(name, default))
        if value is None:
            value = ""
        if value and not valid_cron(value):
            errors.append(f"{name}: '{value}' is not a cron expression (five fields, e.g. '0 3 * * *')")
        if name == "schedule" and not value:
            errors.append("schedule: a cron expression is required (e.g. '0 3 * * *')")
        clean[name] = value
    zone = data.get("timezone") or current("timezone", env_zone)
    if not valid_timezone(zone):
        errors.append(f"timezone: '{zone}' is not a time zone (e.g. Asia/Seoul, UTC)")
    clean["timezone"] = zone
    clean["retention_days"] = _positive(data, "retention_days", errors, current("retention_days", 7), 1, 3650)
    clean["keep_last"] = _positive(data, "keep_last", errors, current("keep_last", 1), 1, 1000)
    clean["rpo_minutes"] = _positive(data, "rpo_minutes", errors, current("rpo_minutes", 1440), 1, 525600)
    clean["rto_minutes"] = _positive(data, "rto_minutes", errors, current("rto_minutes", 240), 1, 525600)
    sql = data.get("verify_sql", current("verify_sql", ""))
    if sql is not None and not isinstance(sql, str):
        errors.append("verify_sql: must be text (a query whose first value is true)")
    clean["verify_sql"] = (sql or "").strip()
    guard = data.get("deploy_guard", current("deploy_guard", "off"))
    if guard not in ("off", "take", "refuse"):
        errors.append(f"deploy_guard: '{guard}' is not one of: off, take, refuse")
    clean["deploy_guard"] = guard
    clean["deploy_guard_minutes"] = _positive(data, "deploy_guard_minutes", errors, current("deploy_guard_minutes", 60),
                                              1, 525600)
    if "enabled" in data:
        clean["enabled"] = bool(data["enabled"])
    destination, credentials = _clean_destination(data.get("destination"), errors, instance)
    clean["destination"] = destination
    if credentials is not None:
        clean["credentials"] = credentials
    if errors:
        raise InvalidInput(errors)
    return clean


AUDIT_FIELDS = ("name", "schedule", "timezone", "retention_days", "keep_last", "rpo_minutes", "rto_minutes",
                "verify_schedule", "verify_sql", "deploy_guard", "deploy_guard_minutes", "enabled")


def _snapshot(target):
    return {f: getattr(target, f) for f in AUDIT_FIELDS} | {
        "destination": dict(target.destination), "dsn": "***", "credentials": "***" if target.credentials_encrypted else ""}


def create_target(user, environment, data, request=None):
    refusal = policies.manage_refusal(user, environment, "add backup targets")
    if refusal:
        deny("backup.target.create", user=user, request=request, environment=environment, reason=refusal)
    clean = clean_target(environment, data)
    if BackupTarget.objects.filter(environment=environment, name=clean["name"]).exists():
        raise InvalidInput(f"name: {environment.slug} already has a backup target named {clean['name']}")
    with transaction.atomic():
        target = BackupTarget(environment=environment, created_by=user if user.is_authenticated else None)
        _apply(target, clean)
        target.save()
        record("backup.target.created", actor=user, request=request, target=target, environment=environment,
               changes={k: [None, v] for k, v in _snapshot(target).items() if v not in ("", None)})
    return target


def update_target(user, target, data, request=None):
    environment = target.environment
    refusal = policies.manage_refusal(user, environment, "change backup targets")
    if refusal:
        deny("backup.target.update", user=user, request=request, target=target, environment=environment, reason=refusal)
    clean = clean_target(environment, data, instance=target)
    if BackupTarget.objects.filter(environment=environment, name=clean["name"]).exclude(pk=target.pk).exists():
        raise InvalidInput(f"name: {environment.slug} already has a backup target named {clean['name']}")
    from portal.audit.services import diff

    with transaction.atomic():
        target = BackupTarget.objects.select_for_update().get(pk=target.pk)
        before = _snapshot(target)
        _apply(target, clean)
        target.save()
        changes = diff(before, _snapshot(target))
        if "dsn" in clean:
            changes["dsn"] = ["***", "*** (replaced)"]
        record("backup.target.updated", actor=user, request=request, target=target, environment=environment,
               changes=changes)
    return target


def delete_target(user, target, request=None):
    environment = target.environment
    refusal = policies.manage_refusal(user, environment, "remove backup targets")
    if refusal:
        deny("backup.target.delete", user=user, request=request, target=target, environment=environment, reason=refusal)
    if Backup.objects.filter(target=target, state__in=BackupState.ACTIVE).exists():
        raise Conflict(f"a backup of {target} is running; wait for it to finish")
    with transaction.atomic():
        record("backup.target.deleted", actor=user, request=request, target=target, environment=environment,
               detail={"note": "objects already stored stay in the destination"})
        target.delete()


def _apply(target, clean):
    for name, value in clean.items():
        if name == "dsn":
            target.dsn = value
            target.dsn_display = pgtools.describe(value)
        elif name == "credentials":
            target.credentials = value
        else:
            setattr(target, name, value)


def warning_for(target):
    return policies.schedule_warning(target.schedule, target.timezone, target.rpo_minutes)


# ---------------------------------------------------------------- backups

def pick_target(environment, name=None):
    targets = list(BackupTarget.objects.filter(environment=environment).select_related("environment"))
    if name:
        for target in targets:
            if target.name == name:
                return target
        raise NotFound(f"{environment.slug} has no backup target named {name}")
    if not targets:
        raise NotFound(f"{environment.slug} has no backup target yet; an admin adds one first")
    if len(targets) > 1:
        raise InvalidInput(f"{environment.slug} has several backup targets ({', '.join(t.name for t in targets)}): "
                           "name one as `target`")
    return targets[0]


def start_backup(target, *, user=None, trigger="manual", request=None):
    """Queue a backup of `target` (a Backup row and its job, audited). `user` None means Gantry itself."""
    environment = target.environment
    if user is not None:
        refusal = policies.manage_refusal(user, environment, "start backups")
        if refusal:
            deny("backup.start", user=user, request=request, target=target, environment=environment, reason=refusal)
    with transaction.atomic():
        BackupTarget.objects.select_for_update().filter(pk=target.pk).first()
        running = Backup.objects.filter(target=target, state__in=BackupState.ACTIVE).first()
        if running is not None:
            raise Conflict(f"backup #{running.pk} of {target} is already {running.state}; wait for it to finish")
        backup = Backup.objects.create(target=target, trigger=trigger,
                                       requested_by=user if user is not None and user.is_authenticated else None)
        record("backup.queued", actor=user, actor_name="gantry-scheduler" if user is None else None, request=request,
               target=backup, environment=environment, detail={"trigger": trigger, "target": target.name})
        job = enqueue_job("backup.run", target=backup, requested_by=user, environment=environment, request=request)
        backup.job = job
        backup.save(update_fields=["job"])
    return backup


def start_drill(backup, *, user=None, trigger="manual", request=None):
    """Queue a restore drill of a good backup."""
    environment = backup.target.environment
    if user is not None:
        refusal = policies.manage_refusal(user, environment, "run restore drills")
        if refusal:
            deny("backup.verify", user=user, request=request, target=backup, environment=environment, reason=refusal)
    if backup.state != BackupState.SUCCEEDED:
        raise Conflict(f"backup #{backup.pk} is {backup.state}; only a succeeded backup can be drilled")
    with transaction.atomic():
        drill = Drill.objects.create(backup=backup, trigger=trigger,
                                     requested_by=user if user is not None and user.is_authenticated else None)
        record("backup.drill.queued", actor=user, actor_name="gantry-scheduler" if user is None else None,
               request=request, target=drill, environment=environment, detail={"backup": backup.pk})
        drill.job = enqueue_job("backup.drill", target=drill, requested_by=user, environment=environment,
                                request=request)
        drill.save(update_fields=["job"])
    return drill


def scratch_name(prefix):
    return f"gantry_{prefix}_{secrets.token_hex(5)}"


def request_restore(backup, *, user, data, request=None):
    """Ask for a restore into a new named database on the target's server (or a given DSN).

    Admin only; in production the environment's approvals first. Nothing is restored over an
    existing database unless `allow_existing` is true."""
    environment = backup.target.environment
    refusal = policies.manage_refusal(user, environment, "restore backups")
    if refusal:
        deny("backup.restore", user=user, request=request, target=backup, environment=environment, reason=refusal)
    if backup.state != BackupState.SUCCEEDED:
        raise Conflict(f"backup #{backup.pk} is {backup.state}; only a succeeded backup can be restored")
    errors = []
    database, dsn = data.get("database"), data.get("dsn")
    if bool(database) == bool(dsn):
        errors.append("give either `database` (a new database on the target's server) or `dsn`")
    if database and (not isinstance(database, str) or not database.replace("_", "a").isalnum()
                     or len(database) > 63 or database[0].isdigit()):
        errors.append("database: letters, digits and underscores, at most 63, not starting with a digit")
    if dsn:
        try:
            if not pgtools.parse_dsn(dsn).get("dbname"):
                errors.append("dsn: name the database to restore into")
        except pgtools.PgToolError as exc:
            errors.append(f"dsn: {exc}")
    allow_existing = data.get("allow_existing", False)
    if not isinstance(allow_existing, bool):
        errors.append("allow_existing: true or false")
    if errors:
        raise InvalidInput(errors)
    source = backup.target.dsn
    if database and database == pgtools.parse_dsn(source).get("dbname") and not allow_existing:
        raise Conflict(f"{database} is the target's own database; restoring over it needs allow_existing: true")
    display = pgtools.describe(dsn) if dsn else pgtools.describe(source, database)
    needs_approval = policies.restore_needs_approval(environment)
    with transaction.atomic():
        restore = Restore(backup=backup, database=database or "", allow_existing=allow_existing,
                          destination_display=display, requested_by=user,
                          state=RestoreState.PENDING_APPROVAL if needs_approval else RestoreState.QUEUED)
        restore.dsn = dsn or ""
        restore.save()
        record("backup.restore.requested", actor=user, request=request, target=restore, environment=environment,
               detail={"backup": backup.pk, "into": display, "allow_existing": allow_existing,
                       "needs_approvals": environment.required_approvals if needs_approval else 0})
        if not needs_approval:
            enqueue_restore(restore, user, request)
    return restore


def enqueue_restore(restore, user, request=None):
    environment = restore.backup.target.environment
    restore.job = enqueue_job("backup.restore", target=restore, requested_by=user, environment=environment,
                              request=request)
    restore.save(update_fields=["job"])


def in_use_backup_ids():
    """Backups a drill or restore is using right now (retention must keep them)."""
    ids = set(Drill.objects.filter(state__in=DrillState.ACTIVE).values_list("backup_id", flat=True))
    return ids | set(Restore.objects.filter(state__in=RestoreState.ACTIVE).values_list("backup_id", flat=True))


def last_good_backup(target):
    return Backup.objects.filter(target=target, state=BackupState.SUCCEEDED).order_by("-finished_at").first()


def now():
    return timezone.now()
