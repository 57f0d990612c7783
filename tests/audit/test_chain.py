import io
import json
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from portal.audit.chain import GENESIS, ChainError, verify_sequence
from portal.audit.models import AuditEvent
from portal.audit.services import record
from portal.audit.queries import export_jsonl


def verify_db():
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
        return 0, out.getvalue() + err.getvalue()
    except SystemExit as exc:
        return exc.code, out.getvalue() + err.getvalue()


def behind_gantrys_back(sql, params=()):
    """Run SQL with triggers off, the way someone with database access could."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.django_db
def test_it_links_each_event_to_the_previous_one():
    with transaction.atomic():
        first = record("test.one")
        second = record("test.two")
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    assert (first.seq, second.seq) == (1, 2)


@pytest.mark.django_db
def test_audit_verify_exits_zero_when_intact():
    with transaction.atomic():
        for n in range(5):
            record("test.event", detail={"n": n})
    code, output = verify_db()
    assert code == 0
    assert "5 event(s) verified" in output


@pytest.mark.django_db
def test_audit_verify_names_a_changed_row():
    with transaction.atomic():
        for n in range(4):
            record("test.event", detail={"n": n})
    behind_gantrys_back("UPDATE audit_auditevent SET actor = 'mallory' WHERE seq = 3")
    code, output = verify_db()
    assert code == 1
    assert "#3" in output and "changed" in output


@pytest.mark.django_db
def test_audit_verify_names_a_deleted_row():
    with transaction.atomic():
        for n in range(4):
            record("test.event", detail={"n": n})
    behind_gantrys_back("DELETE FROM audit_auditevent WHERE seq = 2")
    code, output = verify_db()
    assert code == 1
    assert "#2" in output and "missing" in output


@pytest.mark.django_db
def test_the_database_refuses_update_and_delete_of_audit_rows():
    from django.db.utils import DatabaseError

    with transaction.atomic():
        record("test.event")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.update(actor="mallory")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.all().delete()


@pytest.mark.django_db
def test_it_masks_secrets_in_changes_and_detail():
    with transaction.atomic():
        event = record("cluster.create", changes={"token": ["", "s3cr3t"], "name": [None, "c1"]},
                       detail={"kubeconfig": "apiVersion: v1", "nested": {"password": "pw"}})
    assert event.changes["token"] == "***"
    assert event.changes["name"] == [None, "c1"]
    assert event.detail == {"kubeconfig": "***", "nested": {"password": "***"}}
    assert "s3cr3t" not in json.dumps(event.changes)


@pytest.mark.django_db
def test_the_change_and_its_event_roll_back_together():
    from deployments.models import Service

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Service.objects.create(name="svc", manifest="x")
            record("service.create")
            raise RuntimeError("boom")
    assert not Service.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    errors = []

    def writer(n):
        try:
            for i in range(10):
                with transaction.atomic():
                    record("test.concurrent", detail={"writer": n, "i": i})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert AuditEvent.objects.count() == 60
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 61))
    code, output = verify_db()
    assert code == 0, output


@pytest.mark.django_db
def test_an_export_verifies_offline_and_a_tampered_export_does_not(tmp_path):
    with transaction.atomic():
        for n in range(3):
            record("test.event", detail={"n": n})
    lines = "".join(export_jsonl(AuditEvent.objects.all())).splitlines(keepends=True)
    good = tmp_path / "audit.jsonl"
    good.write_text("".join(lines))
    out = io.StringIO()
    call_command("audit_verify", file=str(good), stdout=out)
    assert "3 event(s) verified" in out.getvalue()

    tampered = [json.loads(line) for line in lines]
    tampered[1]["detail"] = {"n": 99}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in tampered))
    with pytest.raises(SystemExit) as exc:
        call_command("audit_verify", file=str(bad), stdout=io.StringIO(), stderr=io.StringIO())
    assert exc.value.code == 1


def test_verify_sequence_rejects_a_broken_link():
    from portal.audit.chain import compute_hash

    rows = []
    prev = GENESIS
    for seq in (1, 2):
        fields = {"seq": seq, "at": "2026-11-21T00:00:00.000000Z", "actor": "a", "actor_id": None, "action": "x",
                  "outcome": "success", "target_type": "", "target_id": "", "target_repr": "", "environment": "",
                  "ip": "", "changes": {}, "detail": {}, "prev_hash": prev}
        fields["hash"] = compute_hash(fields)
        prev = fields["hash"]
        rows.append(fields)
    assert verify_sequence(rows) == 2
    rows[1]["prev_hash"] = "f" * 64
    rows[1]["hash"] = compute_hash(rows[1])
    with pytest.raises(ChainError) as exc:
        verify_sequence(rows)
    assert exc.value.seq == 2
