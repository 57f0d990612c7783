"""The target edit page: the same rules as adding one (environments.backups.schemas), audited, the DSN and the S3
keys write-only (blank keeps the stored value, never shown back)."""
import pytest

from environments.backups.models import BackupTarget
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

DSN = "postgres://app:pw-old-secret@db:5432/orders"
KEYS = {"access_key_id": "AKIA-OLD-KEY", "secret_access_key": "old-secret-key"}
URL = "/environments/staging/backups/targets/orders-db/edit/"


@pytest.fixture
def s3_target(admin, staging):
    from environments.backups.services import create_target

    return create_target(admin, staging, {"name": "orders-db", "dsn": DSN, "destination": {
        "kind": "s3", "bucket": "team-backups", "prefix": "pg", "region": "eu-west-1", **KEYS}})


def form_post(**changes):
    data = {"name": "orders-db", "dsn": "", "schedule": "0 3 * * *", "timezone": "UTC", "retention_days": "7",
            "keep_last": "1", "rpo_minutes": "1440", "rto_minutes": "240", "verify_schedule": "", "verify_sql": "",
            "deploy_guard": "off", "deploy_guard_minutes": "60", "destination_kind": "s3",
            "destination_bucket": "team-backups", "destination_prefix": "pg", "destination_region": "eu-west-1",
            "destination_endpoint_url": "", "destination_access_key_id": "", "destination_secret_access_key": "",
            "enabled": "1"}
    return data | changes


def test_the_edit_form_shows_the_target_but_never_its_secrets(client, admin, s3_target):
    client.force_login(admin)
    html = client.get(URL).content.decode()
    assert "Edit backup target orders-db of Staging" in html
    assert 'value="team-backups"' in html and 'value="0 3 * * *"' in html and "app@db:5432/orders" in html
    for secret in ("pw-old-secret", "AKIA-OLD-KEY", "old-secret-key"):
        assert secret not in html
    assert "leave blank to keep the stored DSN" in html and "leave blank to keep the stored key" in html
    assert f'href="{URL}"' in client.get("/environments/staging/backups/").content.decode()


def test_blank_secrets_keep_the_stored_ones_and_the_change_is_audited(client, admin, s3_target):
    client.force_login(admin)
    response = client.post(URL, form_post(name="orders-main", schedule="*/30 * * * *", retention_days="14",
                                          rpo_minutes="60", rto_minutes="30", destination_secret_access_key="new-secret"),
                           follow=True)
    html = response.content.decode()
    assert "Backup target orders-main saved." in html
    target = BackupTarget.objects.get()
    assert (target.name, target.schedule, target.retention_days, target.rpo_minutes, target.rto_minutes) == \
        ("orders-main", "*/30 * * * *", 14, 60, 30)
    assert target.dsn == DSN  # blank DSN: kept
    assert target.credentials == {"access_key_id": "AKIA-OLD-KEY", "secret_access_key": "new-secret"}
    event = AuditEvent.objects.get(action="backup.target.updated")
    assert event.actor == "ada" and event.changes["name"] == ["orders-db", "orders-main"]
    assert event.changes["rpo_minutes"] == [1440, 60] and "dsn" not in event.changes
    for secret in ("pw-old-secret", "AKIA-OLD-KEY", "new-secret"):
        assert secret not in str(event.changes) and secret not in html


def test_a_new_dsn_replaces_the_old_and_a_warning_shows_when_the_schedule_misses_the_rpo(client, admin, s3_target):
    client.force_login(admin)
    response = client.post(URL, form_post(dsn="postgres://app:pw-new@db2:5432/orders", rpo_minutes="30"),
                           follow=True)
    html = response.content.decode()
    assert "Warning: the schedule &#x27;0 3 * * *&#x27; leaves up to 1 day between backups" in html
    assert BackupTarget.objects.get().dsn == "postgres://app:pw-new@db2:5432/orders"
    assert AuditEvent.objects.get(action="backup.target.updated").changes["dsn"] == ["***", "*** (replaced)"]


def test_the_edit_form_refuses_what_the_create_rules_refuse_and_changes_nothing(client, admin, s3_target):
    client.force_login(admin)
    response = client.post(URL, form_post(name="Bad Name", schedule="nightly", retention_days="0",
                                          dsn="postgres://app:pw-typed@db:5432/orders"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "schedule: &#x27;nightly&#x27; is not a cron expression" in html
    assert "retention_days: a whole number from 1 to 3650" in html and "pw-typed" not in html
    target = BackupTarget.objects.get()
    assert (target.name, target.schedule, target.retention_days, target.dsn) == ("orders-db", "0 3 * * *", 7, DSN)
    assert not AuditEvent.objects.filter(action="backup.target.updated").exists()


def test_unticking_enabled_disables_the_target(client, admin, s3_target):
    client.force_login(admin)
    data = form_post()
    del data["enabled"]
    client.post(URL, data)
    assert BackupTarget.objects.get().enabled is False
    assert AuditEvent.objects.get(action="backup.target.updated").changes["enabled"] == [True, False]


def test_only_an_admin_of_the_environment_edits_and_a_refused_change_is_audited(client, make_user, staging,
                                                                               s3_target):
    deployer = make_user("dina", ("deployer", staging))
    client.force_login(deployer)
    assert client.get(URL).status_code == 403
    assert client.post(URL, form_post(rpo_minutes="5")).status_code == 403
    assert BackupTarget.objects.get().rpo_minutes == 1440
    denied = AuditEvent.objects.get(action="backup.target.update", outcome="denied")
    assert denied.detail["reason"] == "you need the admin role for staging to change backup targets"
    assert client.get("/environments/staging/backups/targets/nothing/edit/").status_code == 404


def test_moving_a_target_from_s3_to_a_directory_drops_its_s3_keys(client, admin, s3_target, tmp_path):
    client.force_login(admin)
    client.post(URL, form_post(destination_kind="local", destination_path=str(tmp_path)))
    target = BackupTarget.objects.get()
    assert target.destination == {"kind": "local", "path": str(tmp_path)}
    assert target.credentials == {} and target.credentials_encrypted == ""
    assert "credentials" in AuditEvent.objects.get(action="backup.target.updated").changes


def test_new_s3_keys_alone_are_recorded_as_replaced_never_shown(client, admin, s3_target):
    client.force_login(admin)
    response = client.post(URL, form_post(destination_secret_access_key="new-secret-key"))
    assert response.status_code == 302
    target = BackupTarget.objects.get()
    assert target.credentials == {"access_key_id": "AKIA-OLD-KEY", "secret_access_key": "new-secret-key"}
    event = AuditEvent.objects.get(action="backup.target.updated")
    assert set(event.changes) == {"credentials"}  # the key is recorded as changed; its value is masked
    assert "new-secret-key" not in str(event.detail) + str(event.changes)
