"""The audit log proves what happened even against someone with SQL access (issue #7, item 3)."""
import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from portal.audit.models import AuditEvent
from portal.audit.services import record

KEY = "audit-key-for-tests-0123456789abcdef"
OLD_KEY = "the-previous-audit-key-0123456789"


def _events(n, start=0):
    for i in range(start, start + n):
        with transaction.atomic():
            record("test.event", actor_name=f"user{i}", detail={"n": i})


def _verify(capsys):
    try:
        call_command("audit_verify")
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.django_db
def test_truncate_is_refused_on_postgresql():
    _events(3)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL gantry.audit_truncate = 'deny'")
            cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db
def test_with_a_key_the_chain_is_an_hmac_and_a_recomputed_sha256_is_caught(settings, capsys):
    """An attacker with SQL rewrites an event and recomputes the following hashes as plain SHA-256."""
    import hashlib

    from portal.audit.chain import canonical

    settings.GANTRY_AUDIT_KEY = KEY
    _events(4)
    assert AuditEvent.objects.exclude(key_id="").count() == 4
    rows = list(AuditEvent.objects.order_by("seq"))
    forged, prev = [], rows[0].hash
    for event in rows[1:]:
        fields = {name: getattr(event, name) for name in ("seq", "at", "actor", "actor_id", "action", "outcome",
                                                          "target_type", "target_id", "target_repr", "environment",
                                                          "ip", "changes", "detail", "key_id")}
        fields["prev_hash"] = prev
        if event.seq == 2:
            fields["actor"] = "someone-else"
        fields["hash"] = hashlib.sha256(canonical(fields).encode()).hexdigest()
        forged.append(fields)
        prev = fields["hash"]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        for fields in forged:
            cursor.execute("UPDATE audit_auditevent SET actor=%s, prev_hash=%s, hash=%s WHERE seq=%s",
                           [fields["actor"], fields["prev_hash"], fields["hash"], fields["seq"]])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")
    code, text = _verify(capsys)
    assert code == 1 and "#2" in text and "BROKEN" in text


@pytest.mark.django_db
def test_key_rotation_is_an_event_and_old_events_still_verify(settings, capsys):
    _events(2)  # before any key: plain SHA-256
    settings.GANTRY_AUDIT_KEY = OLD_KEY
    _events(2, 2)
    settings.GANTRY_AUDIT_KEY, settings.GANTRY_AUDIT_OLD_KEYS = KEY, [OLD_KEY]
    _events(1, 4)
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["test.event"] * 2 + ["audit.key_rotated"] + ["test.event"] * 2 + ["audit.key_rotated",
                                                                                         "test.event"]
    assert _verify(capsys)[0] == 0
    settings.GANTRY_AUDIT_OLD_KEYS = []
    code, text = _verify(capsys)
    assert code == 1 and "not configured" in text


@pytest.mark.django_db
def test_once_keyed_an_unkeyed_write_is_refused(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.GANTRY_AUDIT_KEY = KEY
    _events(1)
    settings.GANTRY_AUDIT_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="GANTRY_AUDIT_KEY"):
        _events(1)


@pytest.fixture
def checkpoint_dir(settings, tmp_path):
    settings.GANTRY_AUDIT_KEY = KEY
    settings.GANTRY_AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


def _delete_newest(n):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > (SELECT max(seq) FROM audit_auditevent) - %s", [n])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")


@pytest.mark.django_db
def test_checkpoints_reveal_deleted_newest_events(checkpoint_dir, capsys):
    from portal.audit.checkpoints import write_checkpoint

    _events(5)
    checkpoint = write_checkpoint()
    assert checkpoint["seq"] == 5 and len(list(checkpoint_dir.iterdir())) == 1
    code, text = _verify(capsys)
    assert code == 0 and "consistent with the checkpoint" in text
    _delete_newest(2)
    code, text = _verify(capsys)
    assert code == 1 and "ends at #3" in text and "2 newest event(s) were deleted" in text


@pytest.mark.django_db
def test_checkpoints_reveal_a_truncated_log(checkpoint_dir, capsys):
    from portal.audit.checkpoints import write_checkpoint

    _events(3)
    write_checkpoint()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL gantry.audit_truncate = 'allow'")  # an attacker who knows the trick
        cursor.execute("TRUNCATE audit_auditevent")
    code, text = _verify(capsys)
    assert code == 1 and "EMPTY" in text and "truncated" in text


@pytest.mark.django_db
def test_a_forged_checkpoint_is_refused(checkpoint_dir, capsys):
    from portal.audit.checkpoints import write_checkpoint

    _events(3)
    write_checkpoint()
    path = next(checkpoint_dir.iterdir())
    data = json.loads(path.read_text())
    data["seq"] = 1
    path.write_text(json.dumps(data))
    code, text = _verify(capsys)
    assert code == 1 and "signature is wrong" in text


@pytest.fixture
def s3(settings, monkeypatch):
    """moto's S3 server over real HTTP; `s3.bucket(name, lock=..., default=...)` makes the checkpoint bucket."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    settings.GANTRY_AUDIT_KEY = KEY
    settings.GANTRY_AUDIT_CHECKPOINT_S3_ENDPOINT = endpoint

    class S3:
        def bucket(self, name, lock=True, default=None):
            client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
            if default:
                client.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": default}})
            settings.GANTRY_AUDIT_CHECKPOINT_S3_BUCKET = name
            return client

    yield S3()
    server.stop()


def _only_object(client, bucket):
    [obj] = client.list_object_versions(Bucket=bucket)["Versions"]
    return obj["Key"], obj["VersionId"]


@pytest.mark.django_db
def test_each_s3_checkpoint_carries_its_own_object_lock_retention(s3, settings):
    """Not the bucket's default (a short GOVERNANCE one here): compliance mode, for the configured days."""
    import datetime

    from portal.audit.checkpoints import latest_checkpoint, write_checkpoint

    client = s3.bucket("audit", default={"Mode": "GOVERNANCE", "Days": 1})
    _events(2)
    write_checkpoint()
    assert latest_checkpoint()["seq"] == 2
    key, version = _only_object(client, "audit")
    head = client.head_object(Bucket="audit", Key=key, VersionId=version)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    expected = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=settings.GANTRY_AUDIT_CHECKPOINT_RETENTION_DAYS)
    assert abs((until - expected).total_seconds()) < 3600
    with pytest.raises(Exception, match="AccessDenied|locked|retention"):
        client.delete_object(Bucket="audit", Key=key, VersionId=version)  # not even with the bucket's own keys


@pytest.mark.django_db
def test_a_longer_bucket_default_is_kept_and_the_mode_is_a_setting(s3, settings):
    import datetime

    from portal.audit.checkpoints import write_checkpoint

    settings.GANTRY_AUDIT_CHECKPOINT_LOCK_MODE = "GOVERNANCE"
    settings.GANTRY_AUDIT_CHECKPOINT_RETENTION_DAYS = 30
    client = s3.bucket("audit-long", default={"Mode": "COMPLIANCE", "Days": 90})
    _events(1)
    write_checkpoint()
    key, version = _only_object(client, "audit-long")
    head = client.head_object(Bucket="audit-long", Key=key, VersionId=version)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=89)


@pytest.mark.django_db
def test_a_bucket_without_object_lock_still_gets_checkpoints(s3, caplog):
    from portal.audit.checkpoints import latest_checkpoint, write_checkpoint

    client = s3.bucket("plain", lock=False)
    _events(1)
    write_checkpoint()
    assert latest_checkpoint()["seq"] == 1
    [obj] = client.list_objects_v2(Bucket="plain")["Contents"]
    assert "ObjectLockMode" not in client.head_object(Bucket="plain", Key=obj["Key"])
    assert "no Object Lock" in caplog.text
