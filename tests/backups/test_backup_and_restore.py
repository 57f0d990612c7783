"""Backups stream pg_dump into the local store and into S3 (moto over HTTP), checksummed; restores give back
the same rows and large objects."""
import hashlib
import os

import pytest

from environments.backups.models import Backup, Restore
from environments.backups.services import request_restore, start_backup
from portal.audit.models import AuditEvent
from portal.storage import LocalStore

from .conftest import TABLES, database_exists, large_object_count, row_counts, run_jobs_of

pytestmark = pytest.mark.django_db


def file_sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_a_backup_to_the_local_store_is_a_checksummed_dump(admin, staging, source_db, make_target, tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))

    assert backup.state == "succeeded", backup.error
    path = backup.location.removeprefix("file://")
    assert path.startswith(str(tmp_path)) and path.endswith(".dump")
    assert open(path, "rb").read(5) == b"PGDMP"  # pg_dump's custom format
    assert backup.size_bytes == os.path.getsize(path) == backup.bytes_done > 0
    assert backup.sha256 == file_sha256(path)
    assert LocalStore(str(tmp_path)).pending_uploads() == []  # no temporary file left behind
    actions = list(AuditEvent.objects.filter(target_type="backups.backup", target_id=str(backup.pk))
                   .order_by("seq").values_list("action", flat=True))
    assert actions == ["backup.queued", "backup.running", "backup.succeeded"]
    log = " ".join(backup.job.log_lines.values_list("message", flat=True))
    assert "pg_dump -Fc" in log and backup.sha256 in log


def test_a_backup_to_s3_is_one_complete_object_and_no_open_upload(admin, staging, source_db, make_target, s3_bucket):
    destination, store = s3_bucket
    target = make_target(staging, source_db, destination)
    backup = run_jobs_of(start_backup(target, user=admin))

    assert backup.state == "succeeded", backup.error
    assert backup.location == f"s3://{destination['bucket']}/nightly/staging/main-db/{backup.key.rsplit('/', 1)[1]}"
    assert store.list() == [(backup.key, backup.size_bytes)]
    assert hashlib.sha256(b"".join(store.download(backup.key))).hexdigest() == backup.sha256
    assert store.pending_uploads() == []


def test_restore_into_a_new_database_gives_back_every_row_and_large_object(admin, staging, source_db, make_target,
                                                                           s3_bucket, scratch_databases):
    target = make_target(staging, source_db, s3_bucket[0])
    backup = run_jobs_of(start_backup(target, user=admin))
    name = scratch_databases()

    restore = run_jobs_of(request_restore(backup, user=admin, data={"database": name}))

    assert restore.state == "succeeded", restore.error
    source_name = source_db.rsplit("/", 1)[1]
    assert row_counts(name) == row_counts(source_name) == TABLES
    assert large_object_count(name) == large_object_count(source_name) == 5
    assert restore.restore_seconds is not None


def test_restore_refuses_an_existing_database_without_the_flag(admin, staging, source_db, make_target, tmp_path,
                                                              scratch_databases):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    name = scratch_databases()
    first = run_jobs_of(request_restore(backup, user=admin, data={"database": name}))
    assert first.state == "succeeded", first.error

    again = run_jobs_of(request_restore(backup, user=admin, data={"database": name}))

    assert again.state == "failed"
    assert f"the database {name} already exists; nothing was restored" in again.error
    assert row_counts(name) == TABLES  # untouched

    forced = run_jobs_of(request_restore(backup, user=admin, data={"database": name, "allow_existing": True}))
    assert forced.state == "succeeded", forced.error
    assert row_counts(name) == TABLES
    assert Restore.objects.count() == 3 and database_exists(name)
    assert Backup.objects.get(pk=backup.pk).state == "succeeded"


def test_restore_into_a_given_dsn_refuses_one_that_already_holds_tables(admin, staging, source_db, make_target,
                                                                       tmp_path, scratch_databases):
    import psycopg

    from .conftest import admin_connect, server_dsn

    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    empty, busy = scratch_databases(), scratch_databases()
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{empty}"')
        conn.execute(f'CREATE DATABASE "{busy}"')
    with psycopg.connect(server_dsn(busy), autocommit=True) as conn:
        conn.execute("CREATE TABLE keep_me (id int)")

    done = run_jobs_of(request_restore(backup, user=admin, data={"dsn": server_dsn(empty)}))
    assert done.state == "succeeded", done.error
    assert row_counts(empty) == TABLES

    refused = run_jobs_of(request_restore(backup, user=admin, data={"dsn": server_dsn(busy)}))
    assert refused.state == "failed"
    assert refused.error == (f"postgres@127.0.0.1:5432/{busy} already holds 1 table(s); nothing was restored (ask "
                             "again with allow_existing to restore over it)")
