"""The backup API: who may do what, write-only secrets, clear errors that change nothing."""
import pytest

from environments.backups.models import Backup, BackupTarget, Restore
from portal.audit.models import AuditEvent

from .conftest import run_jobs_of

pytestmark = pytest.mark.django_db

SECRET_DSN = "postgres://app:S3cret-pw@db.internal:5432/shop"


def target_body(**extra):
    return {"name": "shop-db", "kind": "postgresql", "dsn": SECRET_DSN, "rpo_minutes": 1440, "rto_minutes": 240,
            **extra}


def test_an_admin_adds_a_target_and_the_secrets_are_never_shown_back(admin, staging, api):
    body = target_body(destination={"kind": "s3", "bucket": "team-backups", "prefix": "pg", "region": "eu-west-1",
                                    "access_key_id": "AKIAEXAMPLE", "secret_access_key": "very-secret-key"})
    response = api(admin).post("/api/v1/environments/staging/backup-targets", body)

    assert response.status_code == 201, response.json()
    text = response.content.decode()
    for secret in ("S3cret-pw", "very-secret-key", "AKIAEXAMPLE"):
        assert secret not in text
    data = response.json()
    assert data["database"] == "app@db.internal:5432/shop" and data["has_dsn"] is True
    assert data["destination"] == {"kind": "s3", "bucket": "team-backups", "prefix": "pg", "endpoint_url": "",
                                   "region": "eu-west-1", "has_credentials": True}
    assert (data["schedule"], data["timezone"], data["retention_days"], data["keep_last"]) == ("0 3 * * *", "UTC", 7, 1)
    assert data["rpo_status"] == "red" and data["last_good_backup_at"] is None and data["warning"] is None
    stored = BackupTarget.objects.get()
    assert "S3cret-pw" not in stored.dsn_encrypted and "very-secret-key" not in stored.credentials_encrypted
    assert stored.dsn == SECRET_DSN and stored.credentials["secret_access_key"] == "very-secret-key"
    event = AuditEvent.objects.get(action="backup.target.created")
    assert "S3cret-pw" not in str(event.changes) and "very-secret-key" not in str(event.changes)
    listed = api(admin).get("/api/v1/environments/staging/backup-targets")
    assert "S3cret-pw" not in listed.content.decode() and listed.json()[0]["name"] == "shop-db"


def test_the_local_directory_is_the_default_destination(admin, staging, api, settings, tmp_path):
    settings.GANTRY_BACKUP_DIR = str(tmp_path)
    data = api(admin).post("/api/v1/environments/staging/backup-targets", target_body()).json()
    assert data["destination"] == {"kind": "local", "path": str(tmp_path)}


def test_a_schedule_that_cannot_meet_the_rpo_is_accepted_with_a_warning(admin, staging, api):
    response = api(admin).post("/api/v1/environments/staging/backup-targets", target_body(rpo_minutes=30))
    assert response.status_code == 201
    assert response.json()["warning"] == (
        "the schedule '0 3 * * *' leaves up to 1 day between backups, more than the RPO of 30 minutes: a failure "
        "just before a backup would lose more data than the objective allows")
    hourly = api(admin).post("/api/v1/environments/staging/backup-targets",
                             target_body(name="hourly", schedule="0 * * * *", rpo_minutes=60))
    assert hourly.json()["warning"] is None


def test_bad_input_lists_every_problem_and_changes_nothing(admin, staging, api):
    response = api(admin).post("/api/v1/environments/staging/backup-targets", target_body(
        schedule="every night", timezone="Mars/Olympus", retention_days=0,
        destination={"kind": "local", "path": "relative/dir"}))
    assert response.status_code == 400
    assert response.json()["detail"] == [
        "schedule: 'every night' is not a cron expression (five fields, e.g. '0 3 * * *')",
        "timezone: 'Mars/Olympus' is not a time zone (e.g. Asia/Seoul, UTC)",
        "retention_days: a whole number from 1 to 3650",
        "destination.path: 'relative/dir' must be an absolute directory on the worker",
    ]
    assert not BackupTarget.objects.exists()
    missing_dsn = api(admin).post("/api/v1/environments/staging/backup-targets", {"name": "x", "dsn": ""})
    assert missing_dsn.status_code == 400


def test_only_an_admin_adds_targets_and_starts_backups_and_refusals_are_audited(admin, viewer, deployer, staging,
                                                                                api, tmp_path):
    refused = api(deployer).post("/api/v1/environments/staging/backup-targets", target_body())
    assert refused.status_code == 403
    assert refused.json()["detail"] == "you need the admin role for staging to add backup targets"
    api(admin).post("/api/v1/environments/staging/backup-targets",
                    target_body(destination={"kind": "local", "path": str(tmp_path)}))
    refused = api(viewer).post("/api/v1/environments/staging/backups")
    assert refused.status_code == 403
    denied = AuditEvent.objects.filter(outcome="denied").order_by("seq")
    assert [(e.actor, e.action) for e in denied] == [("dee", "backup.target.create"), ("vic", "backup.start")]
    assert not Backup.objects.exists()
    assert api(viewer).get("/api/v1/environments/staging/backups").json() == []


def test_starting_a_backup_answers_202_and_a_second_one_waits_its_turn(admin, staging, api, tmp_path, source_db):
    api(admin).post("/api/v1/environments/staging/backup-targets",
                    target_body(dsn=source_db, destination={"kind": "local", "path": str(tmp_path)}))
    response = api(admin).post("/api/v1/environments/staging/backups", {})
    assert response.status_code == 202
    data = response.json()
    assert data["state"] == "queued" and data["target"] == "shop-db" and data["requested_by"] == "ada"
    again = api(admin).post("/api/v1/environments/staging/backups", {"target": "shop-db"})
    assert again.status_code == 409
    assert again.json()["detail"] == f"backup #{data['id']} of staging/shop-db is already queued; wait for it to finish"

    backup = run_jobs_of(Backup.objects.get(pk=data["id"]))
    shown = api(admin).get(f"/api/v1/backups/{backup.pk}").json()
    assert {k: shown[k] for k in ("id", "target", "state", "size_bytes", "sha256", "location", "error", "last_drill")} \
        == {"id": backup.pk, "target": "shop-db", "state": "succeeded", "size_bytes": backup.size_bytes,
            "sha256": backup.sha256, "location": backup.location, "error": None, "last_drill": None}
    assert shown["started_at"].endswith("+00:00") and shown["finished_at"]

    verify = api(admin).post(f"/api/v1/backups/{backup.pk}/verify")
    assert verify.status_code == 202
    drill = verify.json()
    assert drill["drill"] == drill["id"] and drill["state"] == "queued" and drill["backup"] == backup.pk
    assert api(admin).get(f"/api/v1/drills/{drill['id']}").json()["state"] == "queued"
    unknown = api(admin).post("/api/v1/environments/staging/backups", {"target": "nope"})
    assert unknown.status_code == 404 and unknown.json()["detail"] == "staging has no backup target named nope"


def test_backups_of_an_environment_one_cannot_see_are_not_found(admin, make_user, staging, make_env, api, tmp_path,
                                                                source_db):
    other = make_env("other")
    outsider = make_user("out", ("viewer", other))
    api(admin).post("/api/v1/environments/staging/backup-targets",
                    target_body(dsn=source_db, destination={"kind": "local", "path": str(tmp_path)}))
    backup_id = api(admin).post("/api/v1/environments/staging/backups").json()["id"]
    assert api(outsider).get(f"/api/v1/backups/{backup_id}").status_code == 404
    assert api(outsider).get("/api/v1/environments/staging/backups").status_code == 404
    assert api().get(f"/api/v1/backups/{backup_id}").status_code == 401


def test_a_production_restore_waits_for_the_environments_approvals(admin, prod, api, tmp_path, source_db):
    api(admin).post("/api/v1/environments/prod/backup-targets",
                    target_body(dsn=source_db, destination={"kind": "local", "path": str(tmp_path)}))
    backup = run_jobs_of(Backup.objects.get(pk=api(admin).post("/api/v1/environments/prod/backups").json()["id"]))
    response = api(admin).post(f"/api/v1/backups/{backup.pk}/restore", {"database": "shop_copy"})
    assert response.status_code == 202
    assert response.json()["state"] == "pending_approval"
    assert Restore.objects.get().job is None  # nothing runs before the approvals
    both = api(admin).post(f"/api/v1/backups/{backup.pk}/restore", {"database": "x", "dsn": SECRET_DSN})
    assert both.status_code == 400
    assert both.json()["detail"] == "give either `database` (a new database on the target's server) or `dsn`"


def test_production_restore_approvals_follow_the_deployments_rule(admin, make_user, prod, api, tmp_path, source_db,
                                                                   scratch_databases):
    rita = make_user("rita", ("approver", prod))
    api(admin).post("/api/v1/environments/prod/backup-targets",
                    target_body(dsn=source_db, destination={"kind": "local", "path": str(tmp_path)}))
    backup = run_jobs_of(Backup.objects.get(pk=api(admin).post("/api/v1/environments/prod/backups").json()["id"]))
    name = scratch_databases()
    restore_id = api(admin).post(f"/api/v1/backups/{backup.pk}/restore", {"database": name}).json()["id"]

    own = api(admin).post(f"/api/v1/restores/{restore_id}/approve")  # prod prevents self-approval
    assert own.status_code == 403
    assert own.json()["detail"] == "prod prevents self-approval: someone other than the requester must approve"
    assert AuditEvent.objects.filter(action="backup.restore.approve", outcome="denied").count() == 1
    viewer_try = api(make_user("vic2", ("viewer", prod))).post(f"/api/v1/restores/{restore_id}/approve")
    assert viewer_try.json()["detail"] == "you need the approver role for prod to approve restores there"

    approved = api(rita).post(f"/api/v1/restores/{restore_id}/approve", {"comment": "incident 42"})
    assert approved.status_code == 200 and approved.json()["state"] == "queued"
    assert approved.json()["approvals"][0]["user"] == "rita"
    again = api(rita).post(f"/api/v1/restores/{restore_id}/approve")
    assert again.status_code == 403 and again.json()["detail"] == f"restore #{restore_id} has already been queued; " \
                                                                   "decisions are closed"
    restore = run_jobs_of(Restore.objects.get(pk=restore_id))
    assert restore.state == "succeeded", restore.error


def test_a_rejected_production_restore_never_runs(admin, make_user, prod, api, tmp_path, source_db):
    rita = make_user("rita", ("approver", prod))
    api(admin).post("/api/v1/environments/prod/backup-targets",
                    target_body(dsn=source_db, destination={"kind": "local", "path": str(tmp_path)}))
    backup = run_jobs_of(Backup.objects.get(pk=api(admin).post("/api/v1/environments/prod/backups").json()["id"]))
    restore_id = api(admin).post(f"/api/v1/backups/{backup.pk}/restore", {"database": "never_made"}).json()["id"]
    assert api(rita).post(f"/api/v1/restores/{restore_id}/reject").status_code == 400  # a reason is required
    rejected = api(rita).post(f"/api/v1/restores/{restore_id}/reject", {"comment": "wrong backup"})
    assert rejected.json()["state"] == "rejected"
    assert Restore.objects.get(pk=restore_id).job is None


def test_an_admin_changes_a_target_and_the_new_dsn_stays_secret(admin, staging, api):
    api(admin).post("/api/v1/environments/staging/backup-targets", target_body())
    response = api(admin).patch("/api/v1/environments/staging/backup-targets/shop-db",
                                {"dsn": "postgres://app:N3w-secret@db2:5432/shop", "rpo_minutes": 60,
                                 "schedule": "*/15 * * * *"})
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["database"] == "app@db2:5432/shop" and data["rpo_minutes"] == 60 and data["warning"] is None
    assert "N3w-secret" not in response.content.decode()
    event = AuditEvent.objects.get(action="backup.target.updated")
    assert event.changes["dsn"] == ["***", "*** (replaced)"] and event.changes["rpo_minutes"] == [1440, 60]
    assert "N3w-secret" not in str(event.changes)


def test_a_change_checks_only_what_it_gives_and_null_keeps_the_value(admin, staging, api):
    """The target's declared schemas (environments.backups.schemas): a PATCH validates the fields it
    sends; a null keeps the stored value; a bad one changes nothing and is named."""
    api(admin).post("/api/v1/environments/staging/backup-targets", target_body(verify_schedule="0 5 * * 0"))
    url = "/api/v1/environments/staging/backup-targets/shop-db"
    kept = api(admin).patch(url, {"keep_last": 3, "verify_schedule": None, "timezone": None})
    assert kept.status_code == 200, kept.json()
    assert (kept.json()["keep_last"], kept.json()["verify_schedule"], kept.json()["timezone"]) == (3, "0 5 * * 0", "UTC")
    bad = api(admin).patch(url, {"keep_last": 0, "deploy_guard": "always", "enabled": "yes"})
    assert bad.status_code == 400
    assert api(admin).get(url).json()["keep_last"] == 3
    strict = api(admin).patch(url, {"keep_last": 0, "deploy_guard": "always"})
    assert strict.json()["detail"] == ["keep_last: a whole number from 1 to 1000",
                                       "deploy_guard: 'always' is not one of: off, take, refuse"]
    unknown = api(admin).patch(url, {"kind": "mysql"})  # fixed at creation: not a field of a change
    assert unknown.status_code in (400, 422)


def test_a_restore_request_names_each_problem(admin, staging, api, tmp_path, source_db):
    api(admin).post("/api/v1/environments/staging/backup-targets",
                    target_body(dsn=source_db, destination={"kind": "local", "path": str(tmp_path)}))
    backup = run_jobs_of(Backup.objects.get(pk=api(admin).post("/api/v1/environments/staging/backups").json()["id"]))
    bad_name = api(admin).post(f"/api/v1/backups/{backup.pk}/restore", {"database": "9lives"})
    assert bad_name.json()["detail"] == "database: letters, digits and underscores, at most 63, not starting with a digit"
    neither = api(admin).post(f"/api/v1/backups/{backup.pk}/restore", {"allow_existing": True})
    assert neither.json()["detail"] == "give either `database` (a new database on the target's server) or `dsn`"
    no_db = api(admin).post(f"/api/v1/backups/{backup.pk}/restore", {"dsn": "postgres://app@db:5432"})
    assert no_db.status_code == 400 and no_db.json()["detail"].startswith("dsn:")
    assert not Restore.objects.exists()
