from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from environments.models import Environment
from portal.jobs.models import Job
from tests.pages.conftest import events, text


# ---------------------------------------------------------------- list

def test_it_lists_the_environments_a_user_may_see(login, make_user, make_env):
    mine = make_env("mine")
    make_env("theirs")
    body = text(login(make_user("sam", ("deployer", mine))).get("/environments/"))
    assert 'href="/environments/mine/"' in body
    assert 'href="/environments/theirs/"' not in body


def test_it_filters_the_list_by_tier(login, viewer, make_env):
    make_env("dev-a")
    make_env("prod-a", tier="production")
    body = text(login(viewer).get("/environments/?tier=production"))
    assert 'href="/environments/prod-a/"' in body
    assert 'href="/environments/dev-a/"' not in body


def test_it_ignores_an_unknown_tier_filter(login, viewer, make_env):
    make_env("dev-a")
    assert 'href="/environments/dev-a/"' in text(login(viewer).get("/environments/?tier=bogus"))


def test_it_paginates_the_list(login, viewer, make_env, settings):
    settings.GANTRY_PAGE_SIZE = 2
    for slug in ("a-env", "b-env", "c-env"):
        make_env(slug)
    client = login(viewer)
    first, second = text(client.get("/environments/")), text(client.get("/environments/?page=2"))
    assert "a-env" in first and "c-env" not in first
    assert "c-env" in second and "Page 2 of 2" in second


def test_it_shows_the_no_role_page_instead_of_the_list(login, nobody, make_env):
    make_env("dev-a")
    body = text(login(nobody).get("/environments/"))
    assert "You have no role yet" in body and "dev-a" not in body


def test_it_hides_the_create_button_from_viewers(login, viewer):
    assert "/environments/new/" not in text(login(viewer).get("/environments/"))


def test_it_shows_the_create_button_to_deployers(login, deployer):
    assert 'href="/environments/new/"' in text(login(deployer).get("/environments/"))


@pytest.mark.parametrize("count", [5, 50])
def test_the_list_costs_the_same_queries_for_5_and_50_rows(login, viewer, make_env, remote_cluster, deployer, count,
                                                          django_assert_max_num_queries):
    for i in range(count):
        make_env(f"env-{i:02d}", cluster=remote_cluster, owner=deployer, namespace=f"ns-{i}")
    client = login(viewer)
    with django_assert_max_num_queries(7):  # 6 + the live table's version (portal/live.py)
        response = client.get("/environments/")
    assert response.status_code == 200


# ---------------------------------------------------------------- detail

def test_it_shows_the_environment_and_its_protection_rules(login, viewer, make_env):
    make_env("prod", tier="production", required_approvals=2, prevent_self_approval=True, team="core",
             deployment_windows=[{"days": ["mon", "tue"], "start": "09:00", "end": "17:00", "timezone": "Europe/Berlin"}])
    body = text(login(viewer).get("/environments/prod/"))
    assert "tier-production" in body and "core" in body
    assert "<dt>Required approvals</dt><dd>2</dd>" in body
    assert "prevented" in body
    assert "mon, tue 09:00–17:00" in body and "Europe/Berlin" in body


def test_it_says_the_window_is_open_when_there_are_none(login, viewer, make_env):
    make_env("dev-a")
    assert "open now" in text(login(viewer).get("/environments/dev-a/"))


def test_it_says_when_a_closed_window_opens(login, viewer, make_env, clock):
    make_env("prod", tier="production",
             deployment_windows=[{"days": ["fri"], "start": "10:00", "end": "11:00", "timezone": "UTC"}])
    client = login(viewer)
    clock.set(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))  # a Wednesday
    body = text(client.get("/environments/prod/"))
    assert "closed</span>, opens at" in body and "2026-11-27 10:00:00 UTC" in body


def test_it_shows_an_active_freeze(login, viewer, make_env):
    make_env("prod", tier="production", freeze_until=timezone.now() + timedelta(days=1), freeze_reason="holidays")
    body = text(login(viewer).get("/environments/prod/"))
    assert "frozen" in body and "holidays" in body


def test_it_shows_recent_jobs_and_audit_events(login, admin, make_env, remote_cluster):
    client = login(admin)
    client.post("/environments/new/", {"name": "Team B Dev", "tier": "development", "cluster": "remote"})
    body = text(client.get("/environments/team-b-dev/"))
    assert "Provision environment</a>" in body and "state-queued" in body  # the kind's title, not its name
    assert "environment.provision" not in body
    assert "environment.create" in body


def test_it_hides_audit_events_from_users_who_may_not_read_the_audit_log(login, deployer, make_env):
    make_env("dev-a")
    assert "Recent audit events" not in text(login(deployer).get("/environments/dev-a/"))


def test_it_answers_404_for_an_environment_the_user_may_not_see(login, make_user, make_env):
    mine = make_env("mine")
    make_env("theirs")
    assert login(make_user("sam", ("viewer", mine))).get("/environments/theirs/").status_code == 404


def test_it_shows_edit_delete_and_reprovision_to_admins(login, admin, make_env, remote_cluster):
    make_env("dev-a", cluster=remote_cluster)
    body = text(login(admin).get("/environments/dev-a/"))
    assert 'href="/environments/dev-a/edit/"' in body
    assert 'href="/environments/dev-a/delete/"' in body
    assert 'action="/environments/dev-a/reprovision/"' in body


@pytest.mark.parametrize("role", ["viewer", "deployer", "approver"])
def test_it_hides_edit_delete_and_reprovision_from_non_admins(login, make_user, make_env, remote_cluster, role):
    make_env("dev-a", cluster=remote_cluster)
    body = text(login(make_user("sam", role)).get("/environments/dev-a/"))
    assert "/edit/" not in body and "/delete/" not in body and "/reprovision/" not in body


def test_it_shows_edit_to_an_admin_of_that_environment_only(login, make_user, make_env):
    env = make_env("dev-a")
    body = text(login(make_user("sam", ("admin", env))).get("/environments/dev-a/"))
    assert 'href="/environments/dev-a/edit/"' in body
    assert "/delete/" not in body  # deleting needs the global admin role


# ---------------------------------------------------------------- create

def test_it_offers_deployers_only_development_and_preview(login, deployer):
    body = text(login(deployer).get("/environments/new/"))
    assert '<option value="development"' in body and '<option value="preview"' in body
    assert '<option value="production"' not in body and '<option value="staging"' not in body


def test_it_offers_admins_every_tier(login, admin):
    body = text(login(admin).get("/environments/new/"))
    for tier in ("development", "preview", "staging", "production"):
        assert f'<option value="{tier}"' in body


def test_it_creates_an_environment_and_queues_its_provisioning(login, deployer, remote_cluster):
    response = login(deployer).post("/environments/new/", {
        "name": "Team A Dev", "tier": "development", "cluster": "remote", "namespace": "", "ttl_hours": "48",
        "team": "payments"})
    assert response.status_code == 302 and response.url == "/environments/team-a-dev/"
    env = Environment.objects.get(slug="team-a-dev")
    assert (env.tier, env.namespace, env.ttl_hours, env.team, env.owner.username) == \
        ("development", "team-a-dev", 48, "payments", "dee")
    assert Job.objects.filter(kind="environment.provision", environment=env, state="queued").exists()
    assert events("environment.create", "success", environment="team-a-dev").exists()


def test_it_creates_an_environment_without_a_cluster(login, admin):
    login(admin).post("/environments/new/", {"name": "Scratch", "tier": "staging"})
    env = Environment.objects.get(slug="scratch")
    assert env.status == "ready" and env.cluster is None


def test_it_shows_a_bad_slug_and_keeps_the_input(login, deployer):
    response = login(deployer).post("/environments/new/", {"name": "My Env", "slug": "Not_A_Slug", "tier": "development",
                                                          "team": "payments"})
    body = text(response)
    assert response.status_code == 400
    assert "slug: &#x27;Not_A_Slug&#x27; is not valid" in body
    assert 'value="My Env"' in body and 'value="payments"' in body and 'value="Not_A_Slug"' in body
    assert not Environment.objects.exists()


def test_it_refuses_a_duplicate_name(login, admin, make_env):
    make_env("dev-a", name="Shared")
    response = login(admin).post("/environments/new/", {"name": "Shared", "slug": "other", "tier": "development"})
    assert response.status_code == 400
    assert "an environment named &#x27;Shared&#x27; already exists" in text(response)
    assert Environment.objects.count() == 1


def test_it_refuses_a_production_environment_to_a_deployer(login, deployer):
    response = login(deployer).post("/environments/new/", {"name": "Prod", "tier": "production"})
    assert response.status_code == 403
    assert "you may create development and preview environments only" in text(response)
    assert not Environment.objects.exists()
    assert events("environment.create", "denied", actor="dee").exists()


def test_it_refuses_the_create_form_to_viewers(login, viewer):
    assert login(viewer).get("/environments/new/").status_code == 403


def test_it_refuses_a_direct_create_post_from_a_viewer(login, viewer):
    response = login(viewer).post("/environments/new/", {"name": "Sneaky", "tier": "development"})
    assert response.status_code == 403
    assert not Environment.objects.exists()
    assert events("environment.create", "denied", actor="vic").exists()


def test_it_refuses_a_create_post_from_a_user_without_role(login, nobody):
    response = login(nobody).post("/environments/new/", {"name": "Sneaky", "tier": "development"})
    assert response.status_code == 403
    assert events("environment.create", "denied", actor="nobody").exists()


# ---------------------------------------------------------------- edit

def edit_form(**overrides):
    data = {"name": "Prod", "team": "core", "description": "", "required_approvals": "1",
            "prevent_self_approval": "1", "window_count": "1", "window-0-days": [], "window-0-start": "",
            "window-0-end": "", "window-0-timezone": "UTC", "replicas": "1", "blue_green_keep_minutes": "30",
            "notify_emails": "", "approver_groups": "", "checklist": "", "promotion_from": "",
            "save": "1"}
    data.update(overrides)
    return data


def test_it_prefills_the_edit_form(login, admin, make_env):
    make_env("prod", tier="production", name="Prod", required_approvals=2,
             deployment_windows=[{"days": ["wed"], "start": "08:00", "end": "12:00", "timezone": "Asia/Seoul"}])
    body = text(login(admin).get("/environments/prod/edit/"))
    assert 'value="Prod"' in body and 'name="required_approvals" value="2"' in body
    assert 'name="window-0-days" value="wed" checked' in body
    assert 'value="08:00"' in body and 'value="Asia/Seoul"' in body
    assert '<input type="hidden" name="window_count" value="2">' in body  # plus one blank row


def test_it_saves_protection_rules(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    response = login(admin).post("/environments/prod/edit/", edit_form(**{
        "required_approvals": "3", "window-0-days": ["mon", "fri"], "window-0-start": "09:00",
        "window-0-end": "17:30", "window-0-timezone": "Europe/Berlin"}))
    assert response.status_code == 302
    env.refresh_from_db()
    assert env.required_approvals == 3 and env.prevent_self_approval is True
    assert env.deployment_windows == [{"days": ["mon", "fri"], "start": "09:00", "end": "17:30",
                                       "timezone": "Europe/Berlin"}]
    event = events("environment.rules_update", "success", environment="prod").get()
    assert event.changes["required_approvals"] == [0, 3]


def test_it_removes_a_window(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod",
                   deployment_windows=[{"days": ["wed"], "start": "08:00", "end": "12:00", "timezone": "UTC"}])
    login(admin).post("/environments/prod/edit/", edit_form(**{
        "window-0-days": ["wed"], "window-0-start": "08:00", "window-0-end": "12:00", "window-0-remove": "1"}))
    env.refresh_from_db()
    assert env.deployment_windows == []


def test_it_adds_a_window_row_without_saving(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    response = login(admin).post("/environments/prod/edit/", edit_form(**{
        "name": "Renamed", "window-0-days": ["mon"], "window-0-start": "09:00", "window-0-end": "10:00",
        "add_window": "1"}))
    body = text(response)
    assert response.status_code == 200
    assert '<input type="hidden" name="window_count" value="2">' in body and 'value="Renamed"' in body
    env.refresh_from_db()
    assert env.name == "Prod" and env.deployment_windows == []


def test_it_sets_a_freeze_in_the_chosen_zone(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    login(admin).post("/environments/prod/edit/", edit_form(
        freeze_until="2099-12-24T18:00", freeze_timezone="Asia/Seoul", freeze_reason="year-end"))
    env.refresh_from_db()
    assert env.freeze_until.isoformat() == "2099-12-24T09:00:00+00:00"
    assert env.freeze_reason == "year-end"


def test_it_clears_a_freeze(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod", freeze_until=timezone.now() + timedelta(days=1),
                   freeze_reason="x")
    login(admin).post("/environments/prod/edit/", edit_form(clear_freeze="1"))
    env.refresh_from_db()
    assert env.freeze_until is None and env.freeze_reason == ""


def test_it_shows_window_errors_and_changes_nothing(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    response = login(admin).post("/environments/prod/edit/", edit_form(**{
        "name": "Renamed", "required_approvals": "4", "window-0-days": ["mon"], "window-0-start": "25:00",
        "window-0-end": "10:00", "window-0-timezone": "Nowhere/City"}))
    body = text(response)
    assert response.status_code == 400
    assert "deployment_windows[0].start: &#x27;25:00&#x27; is not a time HH:MM" in body
    assert "unknown time zone &#x27;Nowhere/City&#x27;" in body
    assert 'value="Renamed"' in body and 'value="25:00"' in body and 'value="Nowhere/City"' in body
    env.refresh_from_db()
    assert env.name == "Prod" and env.required_approvals == 0
    assert not events("environment.rules_update").exists()


def test_it_refuses_too_many_required_approvals(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    response = login(admin).post("/environments/prod/edit/", edit_form(required_approvals="11"))
    assert response.status_code == 400
    assert "must be a whole number from 0 to 10" in text(response)
    env.refresh_from_db()
    assert env.required_approvals == 0


def test_it_refuses_a_freeze_in_the_past(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    response = login(admin).post("/environments/prod/edit/", edit_form(
        freeze_until="2001-01-01T00:00", freeze_timezone="UTC", freeze_reason="old"))
    assert response.status_code == 400 and "freeze.until: must be in the future" in text(response)
    env.refresh_from_db()
    assert env.freeze_until is None


def test_it_refuses_a_freeze_in_an_unknown_zone(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    response = login(admin).post("/environments/prod/edit/", edit_form(
        freeze_until="2099-01-01T00:00", freeze_timezone="Mars/Base", freeze_reason="x"))
    assert response.status_code == 400 and "unknown time zone &#x27;Mars/Base&#x27;" in text(response)
    env.refresh_from_db()
    assert env.freeze_until is None


def test_it_refuses_the_edit_form_to_deployers(login, deployer, make_env):
    make_env("dev-a")
    assert login(deployer).get("/environments/dev-a/edit/").status_code == 403


def test_it_refuses_a_direct_edit_post_from_a_deployer(login, deployer, make_env):
    env = make_env("dev-a", name="Dev A")
    response = login(deployer).post("/environments/dev-a/edit/", edit_form(name="Hijacked", required_approvals="0"))
    assert response.status_code == 403
    env.refresh_from_db()
    assert env.name == "Dev A"
    assert events("environment.update", "denied", actor="dee").exists()


def test_it_refuses_an_invalid_edit_post_from_a_deployer_with_403_too(login, deployer, make_env):
    make_env("dev-a")
    response = login(deployer).post("/environments/dev-a/edit/", edit_form(freeze_until="garbage", freeze_reason="x"))
    assert response.status_code == 403
    assert events("environment.update", "denied", actor="dee").exists()


# ---------------------------------------------------------------- delete and re-provision

def test_it_asks_before_deleting(login, admin, make_env):
    make_env("dev-a")
    body = text(login(admin).get("/environments/dev-a/delete/"))
    assert "Delete environment Dev A?" in body and 'name="confirm_name"' in body and "Type <code>dev-a</code>" in body
    assert Environment.objects.filter(slug="dev-a").exists()


def test_it_does_not_delete_until_the_name_is_typed(login, admin, make_env):
    make_env("dev-a")
    response = login(admin).post("/environments/dev-a/delete/", {"confirm_name": "dev"})
    assert response.status_code == 400
    assert "type its name, dev-a, to delete this environment" in text(response)
    assert Environment.objects.get(slug="dev-a").status == "ready"


def test_it_deletes_an_environment(login, admin, make_env):
    make_env("dev-a")
    response = login(admin).post("/environments/dev-a/delete/", {"confirm_name": "dev-a"})
    assert response.status_code == 302 and response.url == "/environments/"
    assert Environment.objects.get(slug="dev-a").status == "deleted"  # kept for history and audit
    assert events("environment.delete", "success", environment="dev-a").exists()


def test_it_explains_why_an_environment_with_running_deployments_stays(login, admin, make_env, make_service):
    from deployments.models import Deployment, Release

    env = make_env("dev-a")
    service = make_service("web")
    release = Release.objects.create(service=service, version="1.0.0", image="registry.example.com/web:1.0.0")
    Deployment.objects.create(release=release, environment=env, service=service, state="running",
                              image=release.image, manifest_hash="0" * 64)
    response = login(admin).post("/environments/dev-a/delete/", {"confirm_name": "dev-a"}, follow=True)
    assert "cancel them or let them finish first" in text(response)
    assert Environment.objects.filter(slug="dev-a").exists()


def test_it_refuses_a_direct_delete_post_from_a_deployer(login, deployer, make_env):
    make_env("dev-a")
    response = login(deployer).post("/environments/dev-a/delete/")
    assert response.status_code == 403
    assert Environment.objects.filter(slug="dev-a").exists()
    assert events("environment.delete", "denied", actor="dee").exists()


def test_it_reprovisions_and_shows_the_job(login, admin, make_env, remote_cluster):
    env = make_env("dev-a", cluster=remote_cluster)
    response = login(admin).post("/environments/dev-a/reprovision/")
    job = Job.objects.get(kind="environment.provision", environment=env)
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    env.refresh_from_db()
    assert env.status == "provisioning"


def test_it_explains_why_it_cannot_reprovision_now(login, admin, make_env, remote_cluster):
    make_env("dev-a", cluster=remote_cluster, status="provisioning")
    client = login(admin)
    response = client.post("/environments/dev-a/reprovision/", follow=True)
    assert "wait until it is ready or failed" in text(response)
    assert not Job.objects.exists()


def test_it_refuses_a_direct_reprovision_post_from_a_viewer(login, viewer, make_env, remote_cluster):
    make_env("dev-a", cluster=remote_cluster)
    response = login(viewer).post("/environments/dev-a/reprovision/")
    assert response.status_code == 403
    assert not Job.objects.exists()
    assert events("environment.provision", "denied", actor="vic").exists()


def test_it_rejects_get_on_reprovision(login, admin, make_env):
    make_env("dev-a")
    assert login(admin).get("/environments/dev-a/reprovision/").status_code == 405


# ---------------------------------------------------------------- more rules and notifications

def test_it_saves_the_other_rules(login, admin, make_env):
    make_env("staging", tier="staging", name="Staging")
    env = make_env("prod", tier="production", name="Prod")
    login(admin).post("/environments/prod/edit/", edit_form(
        replicas="3", promotion_from="staging", checklist="Smoke tests green\r\nChangelog read\r\n",
        rollback_requires_approval="1", notify_emails="ops@example.com, sre@example.com"))
    env.refresh_from_db()
    assert env.replicas == 3 and env.promotion_from.slug == "staging" and env.rollback_requires_approval
    assert env.checklist == ["Smoke tests green", "Changelog read"]
    assert env.notify_emails == "ops@example.com, sre@example.com"


def test_it_refuses_an_unknown_approver_group(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod")
    response = login(admin).post("/environments/prod/edit/", edit_form(approver_groups="release-managers"))
    assert response.status_code == 400 and "no group named release-managers" in text(response)
    env.refresh_from_db()
    assert env.approver_groups == []


def test_it_never_shows_the_webhook_url_back(login, admin, make_env):
    make_env("prod", tier="production", name="Prod", webhook_url="https://hooks.example.com/T000/B000/s3cr3t")
    client = login(admin)
    for url in ("/environments/prod/", "/environments/prod/edit/"):
        body = text(client.get(url))
        assert "s3cr3t" not in body and "https://hooks.example.com/***" in body


def test_it_keeps_the_webhook_when_the_field_is_left_empty(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod", webhook_url="https://hooks.example.com/s3cr3t")
    login(admin).post("/environments/prod/edit/", edit_form(webhook_url=""))
    env.refresh_from_db()
    assert env.webhook_url == "https://hooks.example.com/s3cr3t"


def test_it_replaces_and_removes_the_webhook(login, admin, make_env):
    env = make_env("prod", tier="production", name="Prod", webhook_url="https://hooks.example.com/old")
    client = login(admin)
    client.post("/environments/prod/edit/", edit_form(webhook_url="https://hooks.example.com/new"))
    env.refresh_from_db()
    assert env.webhook_url == "https://hooks.example.com/new"
    client.post("/environments/prod/edit/", edit_form(clear_webhook="1"))
    env.refresh_from_db()
    assert env.webhook_url == ""
