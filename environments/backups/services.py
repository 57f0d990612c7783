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
from portal.audit.writes import change_audited, create_audited, delete_audited
from portal.errors import Conflict, InvalidInput, NotFound, deny
from portal.jobs.services import enqueue_job

from . import policies
from .choices import (BACKUP_TRANSITIONS, DRILL_TRANSITIONS, RESTORE_TRANSITIONS, BackupState, DrillState,
                      RestoreState)
from .models import Backup, BackupTarget, Drill, Restore
from .schemas import S3_KEYS, RestoreRequest, TargetChange, TargetCreate, default_local_path

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

def _validated(schema, data):
    """`data` (the API's body as a dict, a page's form) checked by the operation's schema; a field given as
    null (or left blank on the page) is not given: it keeps its value, or takes its default."""
    clean = schema.validated({k: v for k, v in schema.given(data).items() if v is not None})
    return {k: v for k, v in clean.items() if v is not None}


def _target_values(clean, instance=None):
    """A target's new column values from its validated fields: the DSN with its display (no password),
    the S3 keys out of the destination and into the encrypted credentials (a key left out keeps its
    stored value; a move to a local directory drops them)."""
    values = {k: v for k, v in clean.items() if k != "kind"}
    if "dsn" in values:
        values["dsn_display"] = pgtools.describe(values["dsn"])
    if "destination" in values:
        destination = dict(values["destination"])
        keys = {key: destination.pop(key) for key in S3_KEYS if key in destination}
        values["destination"] = destination
        stored = instance.credentials if instance is not None else {}
        if destination["kind"] == "local" and stored:
            values["credentials"] = {}
        elif keys:
            values["credentials"] = {key: keys.get(key) or stored.get(key, "") for key in S3_KEYS}
    return values


AUDIT_FIELDS = ("name", "schedule", "timezone", "retention_days", "keep_last", "rpo_minutes", "rto_minutes",
                "verify_schedule", "verify_sql", "deploy_guard", "deploy_guard_minutes", "enabled")


def _snapshot(target):
    return {f: getattr(target, f) for f in AUDIT_FIELDS} | {
        "destination": dict(target.destination), "dsn": "***", "credentials": "***" if target.credentials_encrypted else ""}


def create_target(user, environment, data, request=None):
    refusal = policies.manage_refusal(user, environment, "add backup targets")
    if refusal:
        deny("backup.target.create", user=user, request=request, environment=environment, reason=refusal)
    clean = {"timezone": getattr(environment, "timezone", "") or settings.TIME_ZONE,
             "destination": {"kind": "local", "path": default_local_path()}} | _validated(
        TargetCreate, {"name": "", "dsn": ""} | TargetCreate.given(data))  # left blank: the rules say so
    if BackupTarget.objects.filter(environment=environment, name=clean["name"]).exists():
        raise InvalidInput(f"name: {environment.slug} already has a backup target named {clean['name']}")
    target = BackupTarget(environment=environment, created_by=user if user.is_authenticated else None,
                          **_target_values(clean))
    return create_audited(target, "backup.target.created", snapshot=_snapshot, actor=user, request=request,
                          environment=environment,
                          taken=f"name: {environment.slug} already has a backup target named {clean['name']}")


def update_target(user, target, data, request=None):
    environment = target.environment
    refusal = policies.manage_refusal(user, environment, "change backup targets")
    if refusal:
        deny("backup.target.update", user=user, request=request, target=target, environment=environment, reason=refusal)
    clean = _validated(TargetChange, data)
    if BackupTarget.objects.filter(environment=environment, name=clean.get("name", target.name)).exclude(
            pk=target.pk).exists():
        raise InvalidInput(f"name: {environment.slug} already has a backup target named {clean['name']}")
    values = _target_values(clean, instance=target)
    replaced = tuple(name for name in ("dsn", "credentials") if values.get(name))  # a new DSN, new S3 keys
    return change_audited(target, values, "backup.target.updated", snapshot=_snapshot, actor=user,
                          request=request, replaced=replaced, environment=environment)


def delete_target(user, target, request=None):
    environment = target.environment
    refusal = policies.manage_refusal(user, environment, "remove backup targets")
    if refusal:
        deny("backup.target.delete", user=user, request=request, target=target, environment=environment, reason=refusal)
    if Backup.objects.filter(target=target, state__in=BackupState.ACTIVE).exists():
        raise Conflict(f"a backup of {target} is running; wait for it to finish")
    delete_audited(target, "backup.target.deleted", snapshot=_snapshot, actor=user, request=request,
                   environment=environment, detail={"note": "objects already stored stay in the destination"})


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
    clean = RestoreRequest.validated(data)
    database, dsn, allow_existing = clean.get("database"), clean.get("dsn"), clean.get("allow_existing", False)
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
