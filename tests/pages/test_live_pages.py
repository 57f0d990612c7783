"""Pages that stay true while open: which fragments are live, and what they say (portal/live.py)."""
import re
from datetime import timedelta

from django.utils import timezone

from deployments import policies
from deployments.models import Deployment
from environments.models import Environment
from portal.jobs.models import Job
from tests.pages.conftest import poll, text, version_of
from tests.pages.deployments.helpers import ask, deployed

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_environment_page_mentions_the_release_waiting_for_approval(login, viewer, deployer, prod, web):
    waiting = ask(deployer, prod, "1.2.0")
    client = login(viewer)
    page = text(client.get("/environments/prod/"))
    assert 'hx-get="/environments/prod/pending/" hx-trigger="load, every 1s"' in page
    body = text(poll(client, "/environments/prod/pending/", "env-pending"))
    assert f'<a href="/deployments/{waiting.pk}/">Deployment #{waiting.pk}: web 1.2.0</a>' in body
    assert "pending approval" in body and "0 of 2 approvals" in body


def test_the_environment_status_and_recent_jobs_follow_a_provisioning(login, viewer, make_env):
    env = make_env("dev-a", status="provisioning")
    job = Job.objects.create(kind="environment.provision", environment=env, state="running")
    Job.objects.create(kind="notification.send", environment=env, state="succeeded")
    client = login(viewer)
    page = text(client.get("/environments/dev-a/"))
    assert '<span id="env-status" class="badge status status-provisioning">provisioning</span>' in page
    assert "notification.send" not in page  # system jobs hidden in Recent jobs
    tag = version_of(page, "env-activity")
    assert poll(client, "/environments/dev-a/", "env-activity", tag).status_code == 304
    Job.objects.filter(pk=job.pk).update(state="succeeded", finished_at=timezone.now())
    Environment.objects.filter(pk=env.pk).update(status="ready", updated_at=timezone.now())
    body = text(poll(client, "/environments/dev-a/", "env-activity", tag))
    assert '<span id="env-status" class="badge status status-ready" hx-swap-oob="true">ready</span>' in body
    assert "state-succeeded" in body


def test_the_deployment_page_answers_its_poll_with_every_part_that_changed(login, viewer, deployer, make_env, web):
    env = make_env("stage", tier="staging", required_approvals=0)
    deployed(deployer, env, "1.0.0")
    running = deployed(deployer, env, "1.1.0", state="running", minutes_ago=0)
    Deployment.objects.filter(pk=running.pk).update(finished_at=None)
    client = login(viewer)
    url = f"/deployments/{running.pk}/"
    page = text(client.get(url))
    tag = version_of(page, "decision-panel")
    assert poll(client, url, "decision-panel", tag).status_code == 304
    now = timezone.now()
    Deployment.objects.filter(pk=running.pk).update(state="succeeded", finished_at=now, updated_at=now, color="green")
    body = text(poll(client, url, "decision-panel", tag))
    assert '<span id="deployment-state" class="badge state state-succeeded" hx-swap-oob="true">' in body
    assert '<section id="release-card" class="card" aria-labelledby="release-heading" hx-swap-oob="true">' in body
    assert '<section id="running-now" class="card" aria-labelledby="live-heading" hx-swap-oob="true">' in body
    assert "This deployment is what runs now." in body and 'color-green' in body


def test_the_approval_page_leads_through_release_changes_dry_run_and_rules_to_the_decision(
        login, approver, deployer, prod, web):
    deployed(deployer, prod, "1.0.0")
    pending = ask(deployer, prod, "1.1.0")
    body = text(login(approver).get(f"/deployments/{pending.pk}/"))
    order = [body.index(marker) for marker in ('id="release-heading"', 'id="diff-heading"', 'id="dry-run-heading"',
                                               'id="rules-heading"', 'id="decision-heading"')]
    assert order == sorted(order)
    assert re.search(r"Changes against 1\.0\.0 \(running now\): <strong>\d+ lines? added, \d+ removed</strong>", body)


def test_the_rollback_confirmation_says_what_the_rules_allow(login, deployer, make_env, web):
    env = make_env("prod", tier="production", required_approvals=2,
                   freeze_until=timezone.now() + timedelta(hours=2), freeze_reason="Black Friday")
    assert policies.rollback_rules(env) == "Rollbacks here skip approval and are allowed during the freeze."
    deployed(deployer, env, "1.0.0", minutes_ago=60)
    deployed(deployer, env, "1.1.0", minutes_ago=5)
    body = text(login(deployer).get("/environments/prod/live/", **HTMX))
    assert 'data-confirm="Roll back web in Prod to 1.0.0? Rollbacks here skip approval and are allowed during the freeze."' in body


def test_rollbacks_that_need_approval_say_so(make_env):
    env = make_env("prod", tier="production", required_approvals=2, rollback_requires_approval=True)
    assert policies.rollback_rules(env) == "Rollbacks here need 2 approvals."


def test_environments_are_listed_in_tier_order(login, viewer, make_env):
    for slug, tier in (("production", "production"), ("staging", "staging"), ("dev", "development")):
        make_env(slug, tier=tier)
    body = text(login(viewer).get("/environments/"))
    assert body.index('href="/environments/dev/"') < body.index('href="/environments/staging/"') \
        < body.index('href="/environments/production/"')


def test_a_user_chooses_the_time_zone_of_their_pages(login, viewer, make_env):
    make_env("dev-a")
    client = login(viewer)
    assert "My browser&#x27;s time zone" in text(client.get("/tokens/")) or "My browser's time zone" in text(
        client.get("/tokens/"))
    response = client.post("/tokens/time-zone/", {"timezone": "Asia/Seoul"})
    assert response.status_code == 302
    body = text(client.get("/environments/dev-a/"))
    assert re.search(r'title="Asia/Seoul">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d KST</time>', body)  # to the second, zone named
    assert "times in Asia/Seoul" in body


def test_an_unknown_time_zone_is_refused_and_changes_nothing(login, viewer):
    response = login(viewer).post("/tokens/time-zone/", {"timezone": "Mars/Olympus"})
    assert response.status_code == 400 and "is not a time zone name" in text(response)
