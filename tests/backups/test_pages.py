"""Backup pages: targets with their RPO badge, backups with state/size/sha/who/last drill, live progress,
failed drills flagged, the target form with its RPO warning, the restore confirmation."""
from datetime import timedelta

import pytest
from django.utils import timezone

from environments.backups.models import Backup, BackupTarget, Drill
from environments.backups.services import start_backup, start_drill

from .conftest import run_jobs_of

pytestmark = pytest.mark.django_db


def page(client, url, **headers):
    response = client.get(url, **headers)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_an_environment_without_targets_invites_an_admin_to_add_one(admin, viewer, staging, login):
    html = page(login(admin), "/environments/staging/backups/")
    assert "No backup targets yet." in html and "/environments/staging/backups/targets/new/" in html
    html = page(login(viewer), "/environments/staging/backups/")
    assert "An admin adds them." in html and "Add backup target" not in html


def test_the_target_form_adds_a_target_and_warns_when_the_schedule_misses_the_rpo(admin, staging, login, tmp_path):
    client = login(admin)
    assert "PostgreSQL DSN" in page(client, "/environments/staging/backups/targets/new/")
    response = client.post("/environments/staging/backups/targets/new/", {
        "name": "orders-db", "dsn": "postgres://app:pw-never-shown@db:5432/orders", "schedule": "0 3 * * *",
        "timezone": "Asia/Seoul", "retention_days": "7", "keep_last": "1", "rpo_minutes": "30", "rto_minutes": "240",
        "destination_kind": "local", "destination_path": str(tmp_path), "deploy_guard": "off"}, follow=True)
    html = response.content.decode()
    assert "Backup target orders-db added." in html
    assert "Warning: the schedule &#x27;0 3 * * *&#x27; leaves up to 1 day between backups, more than the RPO of 30 " \
           "minutes" in html
    assert "app@db:5432/orders" in html and "pw-never-shown" not in html
    assert BackupTarget.objects.get().timezone == "Asia/Seoul"


def test_the_target_form_shows_every_problem_and_never_refills_the_dsn(admin, staging, login):
    response = login(admin).post("/environments/staging/backups/targets/new/", {
        "name": "Bad Name", "dsn": "postgres://app:pw-never-shown@db:5432/orders", "schedule": "nightly",
        "destination_kind": "local"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "schedule: &#x27;nightly&#x27; is not a cron expression" in html and "pw-never-shown" not in html
    assert not BackupTarget.objects.exists()


def test_a_blank_add_form_names_the_name_and_the_dsn_in_gantrys_words(admin, staging, login):
    response = login(admin).post("/environments/staging/backups/targets/new/", {
        "name": "", "dsn": "", "destination_kind": "local"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "name: required" in html and "dsn: the database&#x27;s connection string is required" in html
    assert "Field required" not in html and not BackupTarget.objects.exists()


def test_a_viewer_cannot_open_the_target_form(viewer, staging, login):
    assert login(viewer).get("/environments/staging/backups/targets/new/").status_code == 403


def test_backups_list_state_size_sha_who_and_last_drill_and_flag_failed_drills(admin, staging, source_db, make_target,
                                                                              tmp_path, login):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    client = login(admin)
    response = client.post("/environments/staging/backups/start/", {"target": target.name}, follow=True)
    assert "queued." in response.content.decode()
    backup = run_jobs_of(Backup.objects.get())
    good = run_jobs_of(start_drill(backup, user=admin))
    assert good.state == "passed"

    html = page(client, "/environments/staging/backups/")
    assert f'id="backup-{backup.pk}"' in html and "succeeded" in html
    assert backup.sha256[:10] in html and "ada" in html and "drill passed" in html
    assert "within RPO" in html and "rpo-green" in html

    with open(backup.location.removeprefix("file://"), "r+b") as handle:
        handle.truncate(100)
    bad = run_jobs_of(start_drill(backup, user=admin))
    assert bad.state == "failed"
    html = page(client, "/environments/staging/backups/")
    assert "drill-failed" in html and "drill failed" in html and "last drill failed" in html
    env_html = page(client, "/environments/staging/")
    assert "last drill failed" in env_html and "within RPO" in env_html
    drill_html = page(client, f"/drills/{bad.pk}/")
    assert "the object is corrupted or truncated" in drill_html


def test_a_running_backup_shows_bytes_so_far_and_the_list_updates_live(admin, staging, source_db, make_target,
                                                                       tmp_path, login):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = start_backup(target, user=admin)
    Backup.objects.filter(pk=backup.pk).update(state="running", started_at=timezone.now(), bytes_done=3 * 1024 * 1024)
    client = login(admin)
    first = client.get("/environments/staging/backups/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="backups-live")
    assert first.status_code == 200 and "3.0\xa0MB so far" in first.content.decode()
    etag = first["ETag"]
    unchanged = client.get("/environments/staging/backups/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="backups-live",
                           HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304
    Backup.objects.filter(pk=backup.pk).update(bytes_done=7 * 1024 * 1024)
    moved = client.get("/environments/staging/backups/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="backups-live",
                       HTTP_IF_NONE_MATCH=etag)
    assert moved.status_code == 200 and "7.0\xa0MB so far" in moved.content.decode()


def test_the_rpo_badge_turns_amber_then_red_as_the_last_good_backup_ages(admin, staging, source_db, make_target,
                                                                         tmp_path, login):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)}, rpo_minutes=60)
    backup = run_jobs_of(start_backup(target, user=admin))
    client = login(admin)
    assert "rpo-green" in page(client, "/environments/staging/")
    Backup.objects.filter(pk=backup.pk).update(finished_at=timezone.now() - timedelta(minutes=90))
    assert "rpo-amber" in page(client, "/environments/staging/")
    Backup.objects.filter(pk=backup.pk).update(finished_at=timezone.now() - timedelta(minutes=150))
    assert "rpo-red" in page(client, "/environments/staging/")


def test_the_restore_page_names_the_target_and_asks_for_a_new_database(admin, staging, source_db, make_target,
                                                                       tmp_path, login):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    client = login(admin)
    html = page(client, f"/backups/{backup.pk}/restore/")
    assert f"Restore backup #{backup.pk} of staging/main-db" in html and "data-confirm=" in html
    response = client.post(f"/backups/{backup.pk}/restore/", {"database": "1bad"})
    assert response.status_code == 400


def test_the_backups_page_costs_the_same_queries_for_many_backups(admin, staging, source_db, make_target, tmp_path,
                                                                  login, django_assert_max_num_queries):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)})
    now = timezone.now()
    for i in range(40):
        backup = Backup.objects.create(target=target, state="succeeded", size_bytes=1000 + i, sha256="ab" * 32,
                                       started_at=now, finished_at=now, location=f"file:///x/{i}", requested_by=admin)
        Drill.objects.create(backup=backup, state="passed", restore_seconds=1.5, finished_at=now)
    client = login(admin)
    with django_assert_max_num_queries(18):
        html = page(client, "/environments/staging/backups/")
    assert html.count('class="backup-row') == 40


def test_restores_are_listed_with_their_state_and_approvals(admin, prod, source_db, make_target, tmp_path, login):
    from environments.backups.services import request_restore

    target = make_target(prod, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    request_restore(backup, user=admin, data={"database": "shop_copy"})
    html = page(login(admin), "/environments/prod/backups/")
    assert "pending_approval" in html and "approve or reject in the approvals inbox" in html


def test_the_board_shows_backup_badges_in_the_column_headers_in_one_query(admin, viewer, make_env, make_service,
                                                                          source_db, make_target, tmp_path, login,
                                                                          django_assert_max_num_queries):
    from deployments.monitoring.models import CellHealth

    web = make_service("web")
    staging = make_env("staging", tier="staging")
    CellHealth.objects.create(environment=staging, service=web, status="healthy", since=timezone.now(),
                              checked_at=timezone.now(), changed_at=timezone.now())  # a board row
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)}, rpo_minutes=60)
    now = timezone.now()
    good = Backup.objects.create(target=target, state="succeeded", started_at=now, finished_at=now - timedelta(minutes=5))
    Drill.objects.create(backup=good, state="failed", finished_at=now, error="row counts: ...")
    make_target(make_env("prod", tier="production"), source_db, {"kind": "local", "path": str(tmp_path)},
                name="orders-db")
    client = login(viewer)

    html = page(client, "/")
    header = html[html.index(f'id="board-col-{staging.pk}"'):]
    header = header[:header.index("</th>")]
    assert 'class="badge rpo rpo-green"' in header and "main-db<span" in header
    assert 'href="/environments/staging/backups/"' in header and "drill failed" in header
    prod_header = html[html.index('id="board-col-'):].split('id="board-col-')
    assert any("orders-db" in part and "rpo-red" in part and "no good backup" in part for part in prod_header)

    # Both measured pages follow a change of the columns: the board reuses a grid it made for an
    # unchanged version, which would make the first one cheaper than a real render.
    make_target(make_env("env-first"), source_db, {"kind": "local", "path": str(tmp_path)})
    with django_assert_max_num_queries(100) as few:
        page(client, "/")
    for i in range(10):
        env = make_env(f"env-{i}")
        make_target(env, source_db, {"kind": "local", "path": str(tmp_path)})
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = page(client, "/")
    assert html.count("board-backups") == 13
