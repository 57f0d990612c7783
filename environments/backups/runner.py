"""What the backup jobs do: stream a dump to its destination, drill a backup, restore one, prune.

Memory stays flat whatever the database size: pg_dump's stdout is read in 1 MiB chunks, hashed
(SHA-256) and handed to the store as it comes (S3 parts of 8 MiB; a local file under a temporary
name). Each failure marks the row failed with a sentence and leaves no object that counts.
"""
import hashlib
import logging
import time

from django.db import transaction
from django.utils import timezone

from portal import pgtools
from portal.jobs.models import JobState
from portal.jobs.services import JobFailed
from portal.storage import StorageError, open_store

from . import policies, services
from .choices import BackupState, DrillState, RestoreState
from .models import Backup, Drill, Restore

logger = logging.getLogger("gantry.backups")

PROGRESS_SECONDS = 0.5
LARGEST_TABLES = 5


def store_for(target):
    return open_store(target.destination, target.credentials)


def _human(size):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


# ---------------------------------------------------------------- backup

def run_backup(backup, log):
    target = backup.target
    if backup.state != BackupState.QUEUED:
        raise JobFailed(f"backup #{backup.pk} is already {backup.state}; start a new backup instead")
    started = timezone.now()
    key = f"{target.prefix}{started:%Y%m%dT%H%M%SZ}-{backup.pk}.dump"
    try:
        store = store_for(target)
    except (StorageError, ValueError) as exc:
        _fail_backup(backup, str(exc))
    backup = services.set_state(backup, BackupState.RUNNING, started_at=started, key=key,
                                location=store.location(key))
    log(f"dumping {target.dsn_display} with pg_dump -Fc into {backup.location}")
    digest = hashlib.sha256()
    progress = {"bytes": 0, "at": time.monotonic()}
    row_counts = {}  # filled in the dump's own snapshot; drills compare the restored copy with it

    def stream():
        for chunk in pgtools.dump(target.dsn, row_counts=row_counts):
            digest.update(chunk)
            progress["bytes"] += len(chunk)
            if time.monotonic() - progress["at"] >= PROGRESS_SECONDS:
                Backup.objects.filter(pk=backup.pk).update(bytes_done=progress["bytes"])
                progress["at"] = time.monotonic()
            yield chunk

    def upload_started(ref):
        Backup.objects.filter(pk=backup.pk).update(upload_ref=ref)

    try:
        size = store.upload(key, stream(), on_started=upload_started)
    except (pgtools.PgToolError, StorageError) as exc:
        _discard(store, backup.pk, key)
        _fail_backup(backup, str(exc))
    except BaseException as exc:
        _discard(store, backup.pk, key)
        _fail_backup(backup, f"unexpected error: {exc.__class__.__name__}: {exc}", raise_job_failed=False)
        raise
    finished = timezone.now()
    backup = services.set_state(backup, BackupState.SUCCEEDED, finished_at=finished, size_bytes=size,
                                bytes_done=size, sha256=digest.hexdigest(), upload_ref="", row_counts=row_counts,
                                detail={"size_bytes": size, "sha256": digest.hexdigest(), "location": backup.location,
                                        "tables": len(row_counts), "rows": sum(row_counts.values())})
    seconds = max((finished - started).total_seconds(), 0.001)
    log(f"stored {_human(size)} in {seconds:.1f} s ({_human(size / seconds)}/s), sha256 {digest.hexdigest()}")
    log(f"counted {sum(row_counts.values())} row(s) in {len(row_counts)} table(s) in the dump's own snapshot")
    return {"backup": backup.pk, "size_bytes": size, "sha256": backup.sha256, "location": backup.location}


def _discard(store, backup_id, key):
    """After a failure: abort what the upload left and make sure no object sits under the key."""
    ref = Backup.objects.filter(pk=backup_id).values_list("upload_ref", flat=True).first()
    try:
        store.abandon(key, ref)
        store.delete(key)
    except StorageError:
        logger.warning("could not clean up %s after a failed backup", key, exc_info=True)


def _fail_backup(backup, message, raise_job_failed=True):
    fresh = Backup.objects.get(pk=backup.pk)
    if fresh.state in (BackupState.QUEUED, BackupState.RUNNING):
        services.set_state(fresh, BackupState.FAILED, finished_at=timezone.now(), error=message, upload_ref="")
    if raise_job_failed:
        raise JobFailed(message)


# ---------------------------------------------------------------- drill

def _hash_object(store, key):
    digest, size = hashlib.sha256(), 0
    for chunk in store.download(key):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def run_drill(drill, log):
    backup = drill.backup
    target = backup.target
    if drill.state != DrillState.QUEUED:
        raise JobFailed(f"drill #{drill.pk} is already {drill.state}; start a new drill instead")
    scratch = services.scratch_name(f"drill{drill.pk}")
    drill = services.set_state(drill, DrillState.RUNNING, started_at=timezone.now(), scratch_database=scratch)
    checks = []

    def check(name, ok, detail):
        checks.append({"name": name, "ok": bool(ok), "detail": detail})
        (log if ok else log.warning)(f"{'ok' if ok else 'FAILED'}: {name}: {detail}")
        return ok

    restore_seconds = None
    try:
        store = store_for(target)
        log(f"checking the SHA-256 of {backup.location}")
        sha, size = _hash_object(store, backup.key)
        if not check("checksum", sha == backup.sha256,
                     "matches" if sha == backup.sha256 else
                     f"the object's SHA-256 is {sha} ({size} bytes), the backup recorded {backup.sha256} "
                     f"({backup.size_bytes} bytes): the object is corrupted or truncated"):
            return _finish_drill(drill, checks, None, log)
        tables = pgtools.list_dump_tables(store.download(backup.key))
        log(f"the dump holds {len(tables)} table(s); restoring into scratch database {scratch}")
        pgtools.create_database(target.dsn, scratch)
        clock = time.monotonic()
        pgtools.restore(target.dsn, store.download(backup.key), dbname=scratch)
        restore_seconds = time.monotonic() - clock
        check("restore", True, f"pg_restore finished in {restore_seconds:.1f} s")
        present = pgtools.user_tables(target.dsn, scratch)
        missing = sorted(f"{s}.{t}" for s, t in tables if (s, t) not in present)
        check("tables present", not missing,
              f"all {len(tables)} table(s) of the dump are present" if not missing else
              f"missing after restore: {', '.join(missing[:10])}")
        for schema, table, rows in pgtools.largest_tables_row_counts(target.dsn, scratch, LARGEST_TABLES):
            check(f"rows in {schema}.{table}", True, f"{rows} row(s)")
        if backup.row_counts:
            check("row counts", *compare_row_counts(backup.row_counts, pgtools.count_rows(target.dsn, scratch)))
        else:
            log("this backup recorded no row counts (taken before Gantry counted them): not compared")
        if target.verify_sql:
            ok, detail = pgtools.sanity_check(target.dsn, target.verify_sql, scratch)
            check("sanity SQL", ok, detail)
        check("RTO", policies.rto_met(restore_seconds, target.rto_minutes),
              f"restored in {restore_seconds:.1f} s against an RTO of {target.rto_minutes} min")
    except (pgtools.PgToolError, StorageError) as exc:
        check("restore", False, str(exc))
    finally:
        try:
            pgtools.drop_database(target.dsn, scratch)
            log(f"dropped scratch database {scratch}")
        except pgtools.PgToolError as exc:
            log.warning(f"could not drop scratch database {scratch}: {exc}")
    return _finish_drill(drill, checks, restore_seconds, log)


def compare_row_counts(source, restored):
    """(ok, sentence): the restored copy's rows per table against the source's in the dump's snapshot."""
    differ = []
    for name, expected in sorted(source.items()):
        got = restored.get(name)
        if got is None:
            differ.append(f"{name} is missing, the source had {expected} row(s)")
        elif got != expected:
            differ.append(f"{name} has {got} row(s), the source had {expected}")
    if differ:
        shown = "; ".join(differ[:5]) + (f"; and {len(differ) - 5} more" if len(differ) > 5 else "")
        return False, (f"the restored copy differs from the source at backup time in {len(differ)} of "
                       f"{len(source)} table(s): {shown}")
    return True, (f"all {len(source)} table(s) hold the rows the source held at backup time "
                  f"({sum(source.values())} row(s))")


def _finish_drill(drill, checks, restore_seconds, log):
    failed = [c for c in checks if not c["ok"]]
    state = DrillState.FAILED if failed else DrillState.PASSED
    error = f"{failed[0]['name']}: {failed[0]['detail']}" if failed else ""
    drill = services.set_state(drill, state, finished_at=timezone.now(), checks=checks,
                               restore_seconds=restore_seconds, error=error,
                               detail={"backup": drill.backup_id, "restore_seconds": restore_seconds})
    if failed:
        raise JobFailed(f"the drill failed: {error}")
    log(f"drill passed: restored in {restore_seconds:.1f} s")
    return {"drill": drill.pk, "restore_seconds": restore_seconds}


# ---------------------------------------------------------------- restore

def run_restore(restore, log):
    backup = restore.backup
    target = backup.target
    if restore.state != RestoreState.QUEUED:
        raise JobFailed(f"restore #{restore.pk} is already {restore.state}")
    restore = services.set_state(restore, RestoreState.RUNNING, started_at=timezone.now())
    try:
        store = store_for(target)
        if restore.dsn:
            dsn, dbname = restore.dsn, None
            existing = pgtools.user_tables(dsn)
            if existing and not restore.allow_existing:
                raise RestoreRefused(f"{restore.destination_display} already holds {len(existing)} table(s); nothing was "
                                 "restored (ask again with allow_existing to restore over it)")
        else:
            dsn, dbname = target.dsn, restore.database
            if pgtools.database_exists(dsn, dbname):
                if not restore.allow_existing:
                    raise RestoreRefused(f"the database {dbname} already exists; nothing was restored (ask again with "
                                     "allow_existing to restore over it, or choose a new name)")
                log.warning(f"restoring over the existing database {dbname} (allow_existing)")
            else:
                pgtools.create_database(dsn, dbname)
                log(f"created database {dbname}")
        log(f"checking the SHA-256 of {backup.location}")
        sha, _size = _hash_object(store, backup.key)
        if sha != backup.sha256:
            raise RestoreRefused(f"the object's SHA-256 is {sha}, the backup recorded {backup.sha256}: it is corrupted "
                             "or truncated; nothing was restored")
        clock = time.monotonic()
        pgtools.restore(dsn, store.download(backup.key), dbname=dbname, clean=restore.allow_existing)
        seconds = time.monotonic() - clock
    except (pgtools.PgToolError, StorageError, RestoreRefused) as exc:
        services.set_state(restore, RestoreState.FAILED, finished_at=timezone.now(), error=str(exc))
        raise JobFailed(str(exc)) from None
    services.set_state(restore, RestoreState.SUCCEEDED, finished_at=timezone.now(), restore_seconds=seconds,
                       detail={"into": restore.destination_display, "restore_seconds": seconds})
    log(f"restored backup #{backup.pk} into {restore.destination_display} in {seconds:.1f} s")
    return {"restore": restore.pk, "restore_seconds": seconds}


class RestoreRefused(Exception):
    """A restore refusal found by the job (the row is failed with it)."""


# ---------------------------------------------------------------- retention

def prune_target(target, log, now=None):
    """Delete expired backups of one target: object and row state together, one audit event each."""
    now = now or timezone.now()
    backups = list(Backup.objects.filter(target=target, state__in=(BackupState.SUCCEEDED, BackupState.FAILED)))
    doomed = policies.prunable(target, backups, now, services.in_use_backup_ids())
    if not doomed:
        log(f"nothing to prune for {target}")
        return 0
    store = store_for(target)
    pruned = 0
    for backup in doomed:
        with transaction.atomic():
            # Re-checked under the lock: a drill or restore may have started since.
            if backup.pk in services.in_use_backup_ids():
                log(f"backup #{backup.pk} is in use by a drill or restore; kept")
                continue
            services.set_state(backup, BackupState.PRUNED, actor_name="gantry-retention", pruned_at=now,
                               detail={"location": backup.location, "retention_days": target.retention_days,
                                       "finished_at": backup.finished_at.isoformat() if backup.finished_at else None})
            if backup.key:
                store.delete(backup.key)  # a failure rolls the row back: it stays, and the next run retries
        pruned += 1
        log(f"pruned backup #{backup.pk} ({backup.location or 'no object'})")
    return pruned


# ---------------------------------------------------------------- interrupted work

def fail_interrupted(now=None):
    """Backups, drills and restores whose job ended (a dead worker, reaped) while they ran: fail them,
    abort their upload or drop their scratch database. Returns how many were cleaned."""
    finished_jobs = (JobState.FAILED, JobState.CANCELLED, JobState.SUCCEEDED)
    cleaned = 0
    for backup in Backup.objects.filter(state__in=BackupState.ACTIVE, job__state__in=finished_jobs).select_related(
            "target__environment", "job"):
        try:
            store = store_for(backup.target)
            if backup.key:
                store.abandon(backup.key, backup.upload_ref)
                store.delete(backup.key)
        except StorageError as exc:
            logger.warning("could not abort the upload of %s: %s", backup, exc)
        reason = backup.job.error or f"its job {backup.job.state}"
        services.set_state(backup, BackupState.FAILED, actor_name="gantry-reaper", finished_at=timezone.now(),
                           upload_ref="", error=f"the backup was interrupted ({reason}); its partial upload was "
                                                f"aborted. Start a new backup.")
        cleaned += 1
    for drill in Drill.objects.filter(state__in=DrillState.ACTIVE, job__state__in=finished_jobs).select_related(
            "backup__target__environment", "job"):
        if drill.scratch_database:
            try:
                pgtools.drop_database(drill.backup.target.dsn, drill.scratch_database)
            except pgtools.PgToolError as exc:
                logger.warning("could not drop %s: %s", drill.scratch_database, exc)
        services.set_state(drill, DrillState.FAILED, actor_name="gantry-reaper", finished_at=timezone.now(),
                           error=f"the drill was interrupted ({drill.job.error or drill.job.state}); run it again")
        cleaned += 1
    for restore in Restore.objects.filter(state__in=(RestoreState.QUEUED, RestoreState.RUNNING),
                                          job__state__in=finished_jobs).select_related("backup__target__environment",
                                                                                       "job"):
        services.set_state(restore, RestoreState.FAILED, actor_name="gantry-reaper", finished_at=timezone.now(),
                           error=f"the restore was interrupted ({restore.job.error or restore.job.state}); "
                                 f"{restore.destination_display} may hold a partial restore: drop it and ask again")
        cleaned += 1
    return cleaned
