"""Retention: old events move to JSONL segments, only the archiving job removes them, and
audit_verify checks archive + database as one chain."""
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from portal.audit.archive import archive_old_events
from portal.audit.models import ArchiveSegment, AuditEvent
from portal.audit.services import record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_dir(settings, tmp_path):
    settings.GANTRY_AUDIT_ARCHIVE_DIR = str(tmp_path / "archive")
    settings.GANTRY_AUDIT_RETENTION_DAYS = 400
    return tmp_path / "archive"


def seed(old=25, recent=5):
    """`old` events dated 500 days ago, then `recent` ones from today."""
    for i in range(old + recent):
        with transaction.atomic():
            event = record(f"act.n{i}", actor_name="ci-bot", detail={"i": i})
        if i < old:
            with connection.cursor() as cursor:  # back-date it, the way time would have
                cursor.execute("SET session_replication_role = replica")
                cursor.execute("UPDATE audit_auditevent SET at = %s WHERE id = %s",
                               [timezone.now() - timedelta(days=500), event.pk])
                cursor.execute("SET session_replication_role = DEFAULT")
    # the back-dating changed `at`, so re-seal those rows' hashes the way they would have been written
    from portal.audit.chain import compute_hash, event_fields

    prev = "0" * 64
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        for event in AuditEvent.objects.order_by("seq"):
            fields = event_fields(event) | {"prev_hash": prev}
            digest = compute_hash(fields)
            cursor.execute("UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", [prev, digest, event.pk])
            prev = digest
        cursor.execute("SET session_replication_role = DEFAULT")


def verify(**kwargs):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err, **kwargs)
        return 0, out.getvalue() + err.getvalue()
    except SystemExit as exc:
        return exc.code, out.getvalue() + err.getvalue()


def test_old_events_are_archived_in_segments_and_the_chain_still_verifies(archive_dir):
    seed()
    assert verify()[0] == 0
    segments = archive_old_events(log=lambda m: None, segment_events=10)
    assert [(s.first_seq, s.last_seq) for s in segments] == [(1, 10), (11, 20), (21, 25)]
    assert AuditEvent.objects.order_by("seq").values_list("seq", flat=True)[0] == 26
    files = sorted(p.name for p in archive_dir.iterdir())
    assert files == ["audit-000000000001-000000000010.jsonl", "audit-000000000011-000000000020.jsonl",
                     "audit-000000000021-000000000025.jsonl"]
    first = [json.loads(line) for line in (archive_dir / files[0]).read_text().splitlines()]
    assert [e["action"] for e in first] == [f"act.n{i}" for i in range(10)]
    archived = AuditEvent.objects.get(action="audit.archived", detail__first_seq=21)
    assert archived.actor == "gantry-archiver" and archived.detail["count"] == 5
    code, out = verify()
    assert code == 0, out
    assert "3 segment(s)" in out and f"{25 + 5 + 3} event(s) verified" in out
    # nothing more to do the next time
    assert archive_old_events(log=lambda m: None) == []


def test_verify_names_an_edited_archive_segment(archive_dir):
    seed()
    archive_old_events(log=lambda m: None, segment_events=10)
    path = archive_dir / "audit-000000000011-000000000020.jsonl"
    path.write_text(path.read_text().replace('"ci-bot"', '"mallory"', 1))
    code, out = verify()
    assert code == 1 and "audit event #11" in out and "was changed" in out


def test_verify_notices_a_removed_segment_row(archive_dir):
    seed()
    archive_old_events(log=lambda m: None, segment_events=10)
    ArchiveSegment.objects.filter(first_seq=11).delete()
    code, out = verify()
    assert code == 1 and "#11" in out


def test_only_the_archiving_path_may_delete():
    seed(old=3, recent=2)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.filter(seq=1).delete()
    # the setting alone is not enough: the events must be covered by a recorded segment
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL gantry.audit_archiving = 'on'")
            AuditEvent.objects.filter(seq=1).delete()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.filter(seq=4).update(actor="mallory")
    assert AuditEvent.objects.filter(seq__in=[1, 4]).count() == 2


def test_retention_off_archives_nothing(settings):
    settings.GANTRY_AUDIT_RETENTION_DAYS = None
    seed(old=3, recent=1)
    messages = []
    assert archive_old_events(log=messages.append) == []
    assert "retention is off" in messages[0]
    assert AuditEvent.objects.count() == 4


def test_the_archiving_job_and_command(archive_dir):
    seed(old=4, recent=1)
    out = io.StringIO()
    call_command("audit_archive", stdout=out)
    assert "1 segment(s) archived" in out.getvalue()
    from portal.jobs.models import Job

    job = Job.objects.get(kind="audit.archive")
    assert job.state == "succeeded" and job.result["segments"] == 1
    assert Path(ArchiveSegment.objects.get().location.removeprefix("file://")).exists()


def test_segments_can_go_to_s3(settings, moto_endpoint):
    import os

    from portal.storage import S3Store

    keys = {"access_key_id": "testing-key", "secret_access_key": "testing-secret"}
    bucket = f"audit-{os.getpid()}"
    S3Store(bucket, endpoint_url=moto_endpoint, credentials=keys).client.create_bucket(Bucket=bucket)
    settings.GANTRY_AUDIT_ARCHIVE = {"kind": "s3", "bucket": bucket, "prefix": "gantry/audit",
                                     "endpoint_url": moto_endpoint, "region": "us-east-1", **keys}
    seed(old=12, recent=2)
    segments = archive_old_events(log=lambda m: None, segment_events=10)
    assert [s.location for s in segments] == [f"s3://{bucket}/gantry/audit/audit-000000000001-000000000010.jsonl",
                                              f"s3://{bucket}/gantry/audit/audit-000000000011-000000000012.jsonl"]
    code, out = verify()
    assert code == 0 and "2 segment(s)" in out, out
    store = S3Store(bucket, endpoint_url=moto_endpoint, credentials=keys)
    store.client.put_object(Bucket=bucket, Key="gantry/audit/audit-000000000011-000000000012.jsonl", Body=b"{}\n")
    code, out = verify()
    assert code == 1 and "#11" in out
