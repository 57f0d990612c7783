"""Restore drills: restored into a scratch database, checked, timed, dropped; a corrupted object fails
its drill (checksum first) and the failure shows wherever the backup is listed."""
import time

import psycopg
import pytest

from environments.backups.services import start_backup, start_drill
from portal.errors import Conflict

from .conftest import TABLES, admin_connect, row_counts, run_jobs_of, server_dsn

pytestmark = pytest.mark.django_db


def scratch_databases_left(drill_id):
    with admin_connect() as conn:
        return conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            [f"gantry_drill{drill_id}_%"]).fetchall()


def test_a_drill_restores_checks_times_and_drops_its_scratch_database(admin, staging, source_db, make_target,
                                                                       s3_bucket, api):
    target = make_target(staging, source_db, s3_bucket[0],
                         verify_sql="SELECT count(*) = 2000 FROM public.customers")
    backup = run_jobs_of(start_backup(target, user=admin))

    drill = run_jobs_of(start_drill(backup, user=admin))

    assert drill.state == "passed", drill.checks
    checks = {c["name"]: c for c in drill.checks}
    assert list(checks)[0] == "checksum"
    assert checks["tables present"] == {"name": "tables present", "ok": True,
                                        "detail": "all 4 table(s) of the dump are present"}
    assert checks["rows in sales.orders"]["detail"] == "5000 row(s)"
    assert checks["rows in public.customers"]["detail"] == "2000 row(s)"
    assert backup.row_counts == {f"{s}.{t}": n for (s, t), n in TABLES.items()}
    assert api(admin).get(f"/api/v1/backups/{backup.pk}").json()["row_counts"] == backup.row_counts
    assert checks["row counts"] == {"name": "row counts", "ok": True, "detail": "all 4 table(s) hold the rows the "
                                    "source held at backup time (8200 row(s))"}
    assert checks["sanity SQL"] == {"name": "sanity SQL", "ok": True, "detail": "returned True"}
    assert checks["RTO"]["ok"] is True
    assert drill.restore_seconds > 0
    assert drill.scratch_database.startswith(f"gantry_drill{drill.pk}_")
    assert scratch_databases_left(drill.pk) == []


def test_a_sanity_query_that_is_false_fails_the_drill(admin, staging, source_db, make_target, tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)},
                         verify_sql="SELECT count(*) > 1000000 FROM sales.orders")
    backup = run_jobs_of(start_backup(target, user=admin))
    drill = run_jobs_of(start_drill(backup, user=admin))
    assert drill.state == "failed"
    assert drill.error == "sanity SQL: returned False"
    assert drill.job.state == "failed" and "sanity SQL: returned False" in drill.job.error
    assert scratch_databases_left(drill.pk) == []


def test_a_truncated_object_fails_its_drill_on_the_checksum(admin, staging, source_db, make_target, tmp_path, api):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    path = backup.location.removeprefix("file://")
    with open(path, "r+b") as handle:
        handle.truncate(backup.size_bytes // 2)

    drill = run_jobs_of(start_drill(backup, user=admin))

    assert drill.state == "failed"
    assert [c["name"] for c in drill.checks] == ["checksum"]  # nothing restored from a bad object
    assert drill.error.startswith("checksum: the object's SHA-256 is ")
    assert drill.error.endswith("the object is corrupted or truncated")
    assert f"({backup.size_bytes // 2} bytes)" in drill.error
    assert scratch_databases_left(drill.pk) == []
    listed = api(admin).get("/api/v1/environments/staging/backups").json()
    assert listed[0]["id"] == backup.pk and listed[0]["last_drill"]["state"] == "failed"
    assert api(admin).get(f"/api/v1/backups/{backup.pk}").json()["last_drill"]["id"] == drill.pk
    assert api(admin).get("/api/v1/environments/staging/backup-targets").json()[0]["last_drill"]["state"] == "failed"


def test_a_corrupted_s3_object_fails_its_drill(admin, staging, source_db, make_target, s3_bucket):
    destination, store = s3_bucket
    target = make_target(staging, source_db, destination)
    backup = run_jobs_of(start_backup(target, user=admin))
    data = bytearray(b"".join(store.download(backup.key)))
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    store.client.put_object(Bucket=destination["bucket"], Key=backup.key, Body=bytes(data))

    drill = run_jobs_of(start_drill(backup, user=admin))

    assert drill.state == "failed"
    assert drill.checks[0]["name"] == "checksum" and drill.checks[0]["ok"] is False
    assert f"({backup.size_bytes} bytes)" in drill.error


def test_only_a_succeeded_backup_can_be_drilled(admin, staging, make_target, tmp_path):
    target = make_target(staging, "postgres://postgres@db.invalid/app", {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    assert backup.state == "failed"
    with pytest.raises(Conflict, match=f"backup #{backup.pk} is failed; only a succeeded backup can be drilled"):
        start_drill(backup, user=admin)


def test_rows_are_counted_in_the_dumps_own_snapshot(admin, staging, source_db, make_target, tmp_path, monkeypatch):
    """Rows committed after the snapshot was exported but before pg_dump starts are in neither the dump
    nor the counts: pg_dump runs with --snapshot, the counts in the exporting transaction."""
    from portal import pgtools

    class WritesAfterTheSnapshot(pgtools._SnapshotCounter):
        def __init__(self, dsn, into):
            super().__init__(dsn, into)
            with psycopg.connect(source_db, autocommit=True) as conn:
                conn.execute("INSERT INTO public.customers (name) SELECT 'late ' || g FROM generate_series(1, 100) g")

    monkeypatch.setattr(pgtools, "_SnapshotCounter", WritesAfterTheSnapshot)
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    assert backup.state == "succeeded", backup.error
    assert backup.row_counts["public.customers"] == 2000
    assert row_counts(source_db.rsplit("/", 1)[1])[("public", "customers")] == 2100
    monkeypatch.undo()
    drill = run_jobs_of(start_drill(backup, user=admin))
    assert drill.state == "passed", drill.error  # the dump holds the 2000 rows the counts saw


def test_a_drill_fails_when_the_restored_rows_differ_from_the_source_at_backup_time(admin, staging, source_db,
                                                                                     make_target, tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    # what a dump that lost rows looks like to the drill: the source had more than the copy holds
    backup.row_counts = backup.row_counts | {"sales.orders": 5003, "public.gone": 7}
    backup.save(update_fields=["row_counts"])

    drill = run_jobs_of(start_drill(backup, user=admin))

    assert drill.state == "failed"
    assert drill.error == ("row counts: the restored copy differs from the source at backup time in 2 of 5 table(s): "
                           "public.gone is missing, the source had 7 row(s); sales.orders has 5000 row(s), the "
                           "source had 5003")
    assert drill.job.state == "failed" and "sales.orders has 5000 row(s), the source had 5003" in drill.job.error
    assert scratch_databases_left(drill.pk) == []


def test_the_counts_of_a_dump_cut_short_are_cancelled_and_its_transaction_ends(source_db):
    from portal import pgtools

    counts = {}
    chunks = pgtools.dump(source_db, row_counts=counts)
    next(chunks)
    chunks.close()  # the consumer stops: pg_dump is killed, the counting transaction ends
    with psycopg.connect(server_dsn("postgres"), autocommit=True) as conn:
        for _ in range(100):  # a closed connection's backend leaves the server asynchronously
            open_ = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = "
                                 "'client backend'", [source_db.rsplit("/", 1)[1]]).fetchone()[0]
            if open_ == 0:
                break
            time.sleep(0.1)
    assert open_ == 0
