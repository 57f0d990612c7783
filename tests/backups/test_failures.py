"""Each way a backup can fail ends in a failed backup with a sentence that says what to fix, and no object
that counts as a backup: no file, no temporary file, no open multipart upload."""
import os
import resource
import stat

import pytest
from django.test import override_settings

from environments.backups.services import start_backup
from portal.storage import LocalStore

from portal.throwaway import free_port

from .conftest import run_jobs_of

pytestmark = pytest.mark.django_db


def assert_nothing_stored(store):
    assert store.list() == []
    assert store.pending_uploads() == []


def fail(admin, target):
    backup = run_jobs_of(start_backup(target, user=admin))
    assert backup.state == "failed"
    assert backup.job.state == "failed" and backup.job.error == backup.error
    assert backup.size_bytes is None and backup.sha256 == ""
    return backup


def test_a_wrong_password_says_to_correct_the_password(admin, staging, password_server, make_target, s3_bucket):
    host, port, user, _ = password_server
    destination, store = s3_bucket
    target = make_target(staging, f"postgres://{user}:wrong-password@{host}:{port}/postgres", destination)

    backup = fail(admin, target)

    assert backup.error == (f"the server refused the password of user postgres (postgres@{host}:{port}/postgres): "
                            "correct the password in the target's DSN")
    assert "wrong-password" not in backup.error
    assert_nothing_stored(store)  # the multipart upload was aborted


def test_the_right_password_works_and_never_shows(admin, staging, password_server, make_target, tmp_path):
    host, port, user, password = password_server
    target = make_target(staging, f"postgres://{user}:{password}@{host}:{port}/postgres",
                         {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    assert backup.state == "succeeded", backup.error
    log = " ".join(backup.job.log_lines.values_list("message", flat=True))
    assert password not in log and password not in target.dsn_display


def test_an_unreachable_host_says_to_check_host_and_port(admin, staging, make_target, tmp_path):
    port = free_port()  # nothing listens there
    target = make_target(staging, f"postgres://postgres@127.0.0.1:{port}/app", {"kind": "local", "path": str(tmp_path)})

    backup = fail(admin, target)

    assert backup.error == (f"cannot reach PostgreSQL at 127.0.0.1:{port} (connection refused): check the host and "
                            "port in the target's DSN and that the server accepts connections from the worker")
    assert_nothing_stored(LocalStore(str(tmp_path)))


def test_an_unknown_host_says_so(admin, staging, make_target, tmp_path):
    target = make_target(staging, "postgres://postgres@db.invalid:5432/app", {"kind": "local", "path": str(tmp_path)})
    backup = fail(admin, target)
    assert backup.error == "the host db.invalid is unknown (DNS lookup failed): correct the host in the target's DSN"
    assert_nothing_stored(LocalStore(str(tmp_path)))


def test_a_pg_dump_older_than_the_server_says_which_client_to_install(admin, staging, source_db, make_target,
                                                                     tmp_path):
    # A stand-in for an old client: it answers the way pg_dump 14 answers a PostgreSQL 15 server.
    bindir = tmp_path / "old-client"
    bindir.mkdir()
    fake = bindir / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump: error: aborting because of server version mismatch' >&2\n"
                    "echo 'pg_dump: detail: server version: 15.20; pg_dump version: 14.11' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path / "store")})

    with override_settings(GANTRY_PG_BINDIR=str(bindir)):
        backup = fail(admin, target)

    assert backup.error == ("pg_dump 14.11 is older than the server (15.20) and refuses to dump a newer major "
                            "version: install the PostgreSQL 15 client tools on the worker (or set GANTRY_PG_BINDIR)")
    assert_nothing_stored(LocalStore(str(tmp_path / "store")))


def test_a_missing_bucket_says_to_create_it(admin, staging, source_db, make_target, s3_bucket):
    destination, _store = s3_bucket
    target = make_target(staging, source_db, destination | {"bucket": "no-such-bucket-here"})

    backup = fail(admin, target)

    assert backup.error == (f"the bucket no-such-bucket-here does not exist at {destination['endpoint_url']}: "
                            "create it or correct the destination's bucket name")


def test_a_full_disk_says_to_free_space_and_leaves_no_partial_file(admin, staging, source_db, make_target, tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))  # files stop growing at 16 KiB, like a full disk
    try:
        backup = run_jobs_of(start_backup(target, user=admin))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    assert backup.state == "failed"
    assert backup.error.startswith(f"the destination {tmp_path} is full (")
    assert backup.error.endswith("free space there or choose another directory, then run the backup again")
    assert os.listdir(tmp_path / "staging" / "main-db") == []
