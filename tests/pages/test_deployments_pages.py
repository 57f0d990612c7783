"""Pages of releases, deployments, approvals, rollbacks and what runs where."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.actions import approve_deployment, reject_deployment, request_deployment, request_rollback
from deployments.releases import register_release
from deployments.models import Approval, Deployment, Release, Service, ServiceHealth
from deployments.rendering import manifest_hash, render_text
from portal import kube
from portal.jobs.models import Job, JobLogLine
from tests.pages.conftest import events, text
from tests.pages.test_layout import FormControls

HTMX = {"HTTP_HX_REQUEST": "true"}
DIGEST = "sha256:" + "c" * 64


def image(version, service="web"):
    return f"registry.example.com/shop/{service}:{version}@{DIGEST}"


@pytest.fixture
def prod(make_env):
    return make_env("prod", tier="production", required_approvals=2, prevent_self_approval=True)


@pytest.fixture
def web(make_service):
    return make_service("web")


@pytest.fixture
def omar(make_user):
    return make_user("omar", "approver")


def release_of(user, version, service="web", **extra):
    found = Release.objects.filter(service__name=service, version=version).first()
    return found or register_release(user, {"service": service, "version": version,
                                                       "image": image(version, service), **extra})


def ask(user, env, version="1.1.0", service="web", **extra):
    """Request a deployment through the service, as CI or the form would."""
    release = release_of(user, version, service)
    return request_deployment(user, {"release": release.pk, "environment": env.slug, **extra})


def deployed(user, env, version, service="web", minutes_ago=60, color="", state="succeeded"):
    """A deployment that already ran (rows only: page tests run no jobs)."""
    release = release_of(user, version, service)
    finished = timezone.now() - timedelta(minutes=minutes_ago)
    return Deployment.objects.create(
        release=release, environment=env, service=release.service, requested_by=user, state=state,
        image=release.image, manifest_hash=manifest_hash(release.service, release, env),
        rendered_manifest=render_text(release.service, release, env), finished_at=finished,
        started_at=finished - timedelta(minutes=1), color=color)


def state_of(deployment):
    return Deployment.objects.get(pk=deployment.pk).state


# ---------------------------------------------------------------- the approvals inbox

def test_it_lists_only_what_the_user_may_decide(login, make_user, make_env, deployer, web):
    prod = make_env("prod", tier="production", required_approvals=1)
    staging = make_env("staging", tier="staging", required_approvals=1)
    mine, theirs = ask(deployer, prod), ask(deployer, staging, "1.2.0")
    body = text(login(make_user("pia", ("approver", prod), ("viewer", staging))).get("/approvals/"))
    assert f'href="/deployments/{mine.pk}/"' in body
    assert f'href="/deployments/{theirs.pk}/"' not in body


def test_it_shows_what_each_waiting_deployment_still_needs(login, approver, omar, deployer, prod, web):
    deployment = ask(deployer, prod)
    approve_deployment(omar, deployment.pk)
    body = text(login(approver).get("/approvals/"))
    assert "tier-production" in body and "web</strong> 1.1.0" in body and "dee" in body
    assert re.search(r"<td>1 <span class=\"muted\">of 2</span></td>", body)
    assert "minute" in body  # how long it has waited


def test_it_flags_a_break_glass_request_in_the_inbox(login, make_user, approver, prod, web):
    boss = make_user("bea", "admin")
    ask(boss, prod, break_glass={"reason": "payments down"})
    body = text(login(approver).get("/approvals/"))
    assert "break-glass" in body and "<td>3 <span" in body


def test_the_inbox_is_empty_for_the_requester_when_self_approval_is_prevented(login, make_user, prod, web):
    both = make_user("bo", "deployer", "approver")
    deployment = ask(both, prod)
    body = text(login(both).get("/approvals/"))
    assert "Nothing waits for your decision" in body and f'href="/deployments/{deployment.pk}/"' not in body


def test_the_nav_badge_counts_what_the_user_may_decide(login, approver, deployer, prod, web):
    ask(deployer, prod)
    ask(deployer, prod, "1.2.0")
    client = login(approver)
    assert '<img class="nav-badge" src="/approvals/badge.svg"' in text(client.get("/"))
    response = client.get("/approvals/badge.svg")
    assert response["Content-Type"] == "image/svg+xml" and "no-cache" in response["Cache-Control"]
    assert re.search(r'aria-label="2 waiting".*>2</text>', text(response))


def test_the_nav_badge_is_empty_when_nothing_waits(login, deployer, prod, web):
    ask(deployer, prod)
    assert 'width="0"' in text(login(deployer).get("/approvals/badge.svg"))


def test_the_nav_badge_is_a_live_fragment(login, approver, deployer, prod, web):
    client = login(approver)
    page = text(client.get("/"))
    assert ('<span id="nav-approvals" class="nav-approvals" hx-get="/approvals/count/" '
            'hx-trigger="load, every 1s" hx-swap="outerHTML">') in page
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "nav-approvals"}
    first = client.get("/approvals/count/", **poll)
    assert "nav-count" not in text(first)
    tag = first["ETag"]
    assert client.get("/approvals/count/", HTTP_IF_NONE_MATCH=tag, **poll).status_code == 304
    ask(deployer, prod)
    response = client.get("/approvals/count/", HTTP_IF_NONE_MATCH=tag, **poll)
    assert response.status_code == 200
    assert '<span class="nav-count">1<span class="visually-hidden"> waiting for your decision</span>' in text(response)



@pytest.mark.parametrize("count", [3, 30])
def test_the_inbox_costs_the_same_queries_for_3_and_30_pending_deployments(
        login, approver, deployer, prod, web, omar, count, django_assert_max_num_queries):
    for i in range(count):
        deployment = ask(deployer, prod, f"1.{i}.0")
        approve_deployment(omar, deployment.pk)  # approvals to prefetch, too
    client = login(approver)
    with django_assert_max_num_queries(9):  # 7, plus environment requests and their approvals
        response = client.get("/approvals/")
    assert len(re.findall(r'href="/deployments/\d+/"', text(response))) == count


# ---------------------------------------------------------------- the deployment page: deciding

def test_it_shows_the_release_the_rules_and_the_manifests(login, approver, deployer, prod, web):
    release = register_release(deployer, {"service": "web", "version": "1.4.2", "image": image("1.4.2"),
                                                     "git_sha": "3f2a9c1", "notes": "New checkout"})
    deployment = request_deployment(deployer, {"release": release.pk, "environment": "prod"})
    body = text(login(approver).get(f"/deployments/{deployment.pk}/"))
    assert image("1.4.2") in body and "3f2a9c1" in body and "New checkout" in body
    assert "state-pending_approval" in body and "2 still needed" in body
    assert "prevented: dee cannot approve" in body
    assert '<pre class="manifest"' in body and "APP_ENV" in body
    assert "Nothing of web has been deployed to Prod yet" in body


def test_it_shows_approve_and_reject_to_an_approver(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    body = text(login(approver).get(f"/deployments/{deployment.pk}/"))
    assert f'hx-post="/deployments/{deployment.pk}/approve" hx-target="#decision-panel" hx-swap="outerHTML"' in body
    assert f'action="/deployments/{deployment.pk}/reject"' in body
    assert re.search(r'<textarea id="reject-comment" name="comment"[^>]* required', body)


def test_it_hides_the_approve_button_from_the_requester(login, make_user, prod, web):
    both = make_user("bo", "deployer", "approver")
    deployment = ask(both, prod)
    body = text(login(both).get(f"/deployments/{deployment.pk}/"))
    assert f"/deployments/{deployment.pk}/approve" not in body
    assert "You cannot approve: prod prevents self-approval" in body


def test_it_hides_the_decision_forms_from_a_viewer(login, viewer, deployer, prod, web):
    deployment = ask(deployer, prod)
    body = text(login(viewer).get(f"/deployments/{deployment.pk}/"))
    assert f"/deployments/{deployment.pk}/approve" not in body and f"/deployments/{deployment.pk}/reject" not in body


def test_it_refuses_a_direct_approve_post_with_403_and_audits_it(login, viewer, deployer, prod, web):
    deployment = ask(deployer, prod)
    response = login(viewer).post(f"/deployments/{deployment.pk}/approve", {"comment": "sneaky"})
    assert response.status_code == 403
    assert "approver role for prod" in text(response)
    assert not Approval.objects.exists() and state_of(deployment) == "pending_approval"
    assert events("deployment.approve", "denied", actor="vic").exists()


def test_it_shows_an_htmx_refusal_in_the_panel_and_audits_it(login, viewer, deployer, prod, web):
    deployment = ask(deployer, prod)
    response = login(viewer).post(f"/deployments/{deployment.pk}/approve", {}, **HTMX)
    assert response.status_code == 200  # htmx swaps only 2xx answers: the refusal shows in place
    assert "approver role for prod" in text(response) and "<html" not in text(response)
    assert not Approval.objects.exists()
    assert events("deployment.approve", "denied", actor="vic").exists()


def test_it_approves_in_place_with_htmx(login, approver, omar, deployer, prod, web):
    deployment = ask(deployer, prod)
    approve_deployment(omar, deployment.pk)
    response = login(approver).post(f"/deployments/{deployment.pk}/approve", {"comment": "ship it"}, **HTMX)
    body = text(response)
    assert response.status_code == 200 and "<html" not in body
    assert body.startswith('<section id="decision-panel"')
    assert "ship it" in body and "abe" in body
    assert '<span id="deployment-state" class="badge state state-queued" hx-swap-oob="true">queued</span>' in body
    assert state_of(deployment) == "queued"
    assert events("deployment.approve", "success", actor="abe").exists()


def test_it_brings_the_job_into_the_page_once_the_approval_starts_it(login, approver, make_env, deployer, web):
    env = make_env("stage", tier="staging", required_approvals=1)
    deployment = ask(deployer, env)
    body = text(login(approver).post(f"/deployments/{deployment.pk}/approve", {}, **HTMX))
    job = Deployment.objects.get(pk=deployment.pk).job
    assert '<section id="deployment-job" aria-labelledby="job-heading" hx-swap-oob="true">' in body
    assert f'hx-get="/jobs/{job.pk}/?after=0" hx-trigger="every 1s"' in body
    assert f'hx-get="/deployments/{deployment.pk}/?hash=' in body and 'hx-trigger="every 1s"' in body  # live panel


def test_it_approves_with_a_normal_post_and_redirects_with_a_message(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    response = login(approver).post(f"/deployments/{deployment.pk}/approve", {}, follow=True)
    assert response.redirect_chain[-1][0] == f"/deployments/{deployment.pk}/"
    assert f"You approved deployment #{deployment.pk}; it is now pending approval." in text(response)
    assert Approval.objects.get().user == approver


def test_it_refuses_to_reject_without_a_comment_and_changes_nothing(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    response = login(approver).post(f"/deployments/{deployment.pk}/reject", {"comment": "  "})
    assert response.status_code == 400
    assert "comment: required to reject" in text(response)
    assert state_of(deployment) == "pending_approval" and not Approval.objects.exists()


def test_it_shows_the_missing_reject_comment_in_the_htmx_panel(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    response = login(approver).post(f"/deployments/{deployment.pk}/reject", {}, **HTMX)
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert "comment: required to reject" in text(response) and "<html" not in text(response)
    assert state_of(deployment) == "pending_approval"


def test_it_rejects_with_a_comment(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    login(approver).post(f"/deployments/{deployment.pk}/reject", {"comment": "needs the migration first"})
    assert state_of(deployment) == "rejected"
    assert Approval.objects.get().comment == "needs the migration first"


def test_it_refuses_a_comment_that_is_too_long(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    response = login(approver).post(f"/deployments/{deployment.pk}/approve", {"comment": "x" * 2001})
    assert response.status_code == 400 and "at most 2000 characters" in text(response)
    assert not Approval.objects.exists()


def test_the_checklist_must_be_ticked(login, approver, make_env, deployer, web):
    env = make_env("prod", tier="production", required_approvals=1, checklist=["DB migrated", "On-call told"])
    deployment = ask(deployer, env)
    client = login(approver)
    body = text(client.get(f"/deployments/{deployment.pk}/"))
    assert re.search(r'<input type="checkbox" id="checklist-1" name="checklist" hx-preserve="true" value="DB migrated" '
                     r'required>', body)  # hx-preserve: a live swap of the panel keeps the ticks
    response = client.post(f"/deployments/{deployment.pk}/approve", {"checklist": ["DB migrated"]})
    assert response.status_code == 400 and "checklist: tick &#x27;On-call told&#x27; before approving" in text(response)
    assert not Approval.objects.exists()
    client.post(f"/deployments/{deployment.pk}/approve", {"checklist": ["DB migrated", "On-call told"]})
    assert Approval.objects.get().checklist == ["DB migrated", "On-call told"]


def test_a_stale_approval_says_it_no_longer_counts(login, approver, omar, deployer, prod, web):
    deployment = ask(deployer, prod)
    approve_deployment(omar, deployment.pk, comment="ok")
    Service.objects.filter(pk=web.pk).update(manifest=web.manifest.replace("cpu: 250m", "cpu: 500m"))
    body = text(login(approver).get(f"/deployments/{deployment.pk}/"))
    assert "no longer counts: the rendered manifests changed after this approval" in body
    assert "0 of 2 approvals" in body and "cpu: 500m" in body


def test_it_cancels_a_request_for_its_requester(login, deployer, prod, web):
    deployment = ask(deployer, prod)
    client = login(deployer)
    assert f'action="/deployments/{deployment.pk}/cancel"' in text(client.get(f"/deployments/{deployment.pk}/"))
    client.post(f"/deployments/{deployment.pk}/cancel")
    assert state_of(deployment) == "cancelled"


def test_it_answers_404_for_a_deployment_of_an_invisible_environment(login, make_user, make_env, deployer, prod, web):
    deployment = ask(deployer, prod)
    assert login(make_user("sam", ("viewer", make_env("dev")))).get(f"/deployments/{deployment.pk}/").status_code == 404


def test_it_rejects_get_on_approve(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    assert login(approver).get(f"/deployments/{deployment.pk}/approve").status_code == 405


# ---------------------------------------------------------------- the deployment page: what changes

def test_the_diff_shows_added_and_removed_lines(login, approver, deployer, prod, web):
    deployed(deployer, prod, "1.0.0")
    deployment = ask(deployer, prod, "1.1.0")
    body = text(login(approver).get(f"/deployments/{deployment.pk}/"))
    assert f'<span class="diff-line diff-del">-          image: {image("1.0.0")}</span>' in body
    assert f'<span class="diff-line diff-add">+          image: {image("1.1.0")}</span>' in body
    assert '<span class="diff-line diff-file">--- running now</span>' in body


def test_it_shows_what_runs_now(login, approver, deployer, prod, web):
    live = deployed(deployer, prod, "1.0.0")
    deployment = ask(deployer, prod, "1.1.0")
    body = text(login(approver).get(f"/deployments/{deployment.pk}/"))
    assert f'<a href="/deployments/{live.pk}/">web 1.0.0</a>' in body


def test_it_loads_the_dry_run_lazily(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)
    body = text(login(approver).get(f"/deployments/{deployment.pk}/"))
    assert f'hx-get="/deployments/{deployment.pk}/preview/" hx-trigger="load" hx-swap="outerHTML"' in body


def test_the_dry_run_shows_what_the_cluster_would_create(login, approver, deployer, make_env, cluster, web):
    kube.ensure_namespace(cluster, "prod", {})
    env = make_env("prod", tier="production", cluster=cluster, required_approvals=1)
    deployment = ask(deployer, env)
    body = text(login(approver).get(f"/deployments/{deployment.pk}/preview/", **HTMX))
    assert "server-side dry run passed" in body and "action-create" in body
    assert f'<span class="diff-line diff-add">+        image: {image("1.1.0")}</span>' in body


def test_the_dry_run_reports_cluster_problems(login, approver, deployer, prod, web):
    deployment = ask(deployer, prod)  # prod has no cluster
    body = text(login(approver).get(f"/deployments/{deployment.pk}/preview/", **HTMX))
    assert "The dry run found problems" in body and "has no cluster" in body


def test_it_shows_a_break_glass_banner(login, make_user, approver, prod, web):
    deployment = ask(make_user("bea", "admin"), prod, break_glass={"reason": "payments down"})
    body = text(login(approver).get(f"/deployments/{deployment.pk}/"))
    assert "Break-glass override" in body and "payments down" in body
    assert "3 <span class=\"muted\">(2 + 1 for the break-glass override)</span>" in body


def test_it_embeds_the_job_log_and_follows_it(login, viewer, deployer, make_env, web):
    env = make_env("dev")
    deployment = ask(deployer, env)  # no approvals needed: queued with its job
    job = Deployment.objects.get(pk=deployment.pk).job
    Job.objects.filter(pk=job.pk).update(state="running", started_at=timezone.now())
    line = JobLogLine.objects.create(job=job, message="applying Deployment web")
    body = text(login(viewer).get(f"/deployments/{deployment.pk}/"))
    assert "applying Deployment web" in body
    assert f'hx-get="/jobs/{job.pk}/?after={line.pk}" hx-trigger="every 1s"' in body


# ---------------------------------------------------------------- rollback

def test_the_rollback_button_is_only_on_the_live_deployment(login, deployer, prod, web):
    old = deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    client = login(deployer)
    assert f'action="/deployments/{live.pk}/rollback"' in text(client.get(f"/deployments/{live.pk}/"))
    assert "Roll back to 1.0.0" in text(client.get(f"/deployments/{live.pk}/"))
    assert "/rollback" not in text(client.get(f"/deployments/{old.pk}/"))


def test_the_rollback_button_is_hidden_from_non_deployers(login, approver, deployer, prod, web):
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    assert "/rollback" not in text(login(approver).get(f"/deployments/{live.pk}/"))


def test_it_rolls_back_the_live_deployment(login, deployer, prod, web):
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    response = login(deployer).post(f"/deployments/{live.pk}/rollback", {"reason": "errors up"})
    rollback = Deployment.objects.get(kind="rollback")
    assert response.status_code == 302 and response.url == f"/deployments/{rollback.pk}/"
    assert rollback.release.version == "1.0.0" and rollback.reason == "errors up"


def test_it_explains_why_an_old_deployment_cannot_be_rolled_back(login, deployer, prod, web):
    old = deployed(deployer, prod, "1.0.0", minutes_ago=60)
    deployed(deployer, prod, "1.1.0", minutes_ago=5)
    response = login(deployer).post(f"/deployments/{old.pk}/rollback", follow=True)
    assert "is not what runs now" in text(response)
    assert not Deployment.objects.filter(kind="rollback").exists()


# ---------------------------------------------------------------- requesting a deployment

def test_the_request_form_lists_releases_and_the_deployers_environments(login, make_user, make_env, deployer, web):
    dev, prod = make_env("dev"), make_env("prod", tier="production")
    release_of(deployer, "1.0.0")
    dana = make_user("dana", ("deployer", dev), ("viewer", prod))
    body = text(login(dana).get("/deployments/new/?service=web"))
    assert '<option value="dev"' in body and '<option value="prod"' not in body
    assert "1.0.0 · " + image("1.0.0") in body
    assert "Break the glass" not in body


def test_the_request_form_offers_break_glass_to_admins(login, admin, prod, web):
    release_of(admin, "1.0.0")
    assert "Break the glass" in text(login(admin).get("/deployments/new/?service=web"))


def test_it_requests_a_deployment_and_shows_its_page(login, deployer, prod, web):
    release = release_of(deployer, "1.0.0")
    response = login(deployer).post("/deployments/new/", {"service": "web", "release": release.pk,
                                                          "environment": "prod"}, follow=True)
    deployment = Deployment.objects.get()
    assert response.redirect_chain[-1][0] == f"/deployments/{deployment.pk}/"
    assert deployment.state == "pending_approval" and deployment.requested_by == deployer
    assert f"Deployment #{deployment.pk} of web 1.0.0 to prod requested" in text(response)


def test_the_request_form_refuses_during_a_freeze_with_its_message(login, deployer, make_env, web):
    make_env("prod", tier="production", freeze_until=timezone.now() + timedelta(days=2),
             freeze_reason="Black Friday: no changes")
    release = release_of(deployer, "1.0.0")
    response = login(deployer).post("/deployments/new/", {"service": "web", "release": release.pk,
                                                          "environment": "prod"})
    assert response.status_code == 409
    assert "prod is frozen until" in text(response) and "Black Friday: no changes" in text(response)
    assert not Deployment.objects.exists()
    assert events("deployment.request", "denied", actor="dee").exists()


def test_the_request_form_refuses_start_now_when_the_window_is_closed(login, deployer, make_env, web):
    always_closed = [{"days": ["mon"], "start": "00:00", "end": "00:01", "timezone": "UTC"}]
    make_env("prod", tier="production", deployment_windows=always_closed)
    release = release_of(deployer, "1.0.0")
    response = login(deployer).post("/deployments/new/", {"service": "web", "release": release.pk,
                                                          "environment": "prod", "start_now": "1"})
    if response.status_code == 302:  # it happens to be Monday 00:00 UTC
        pytest.skip("the window is open right now")
    assert response.status_code == 409 and "the deployment window of prod is closed" in text(response)


def test_the_request_form_shows_input_errors(login, deployer, make_env, web):
    make_env("prod", tier="production")
    release = register_release(deployer, {"service": "web", "version": "1", "image": "web:latest"})
    response = login(deployer).post("/deployments/new/", {"service": "web", "release": release.pk,
                                                          "environment": "prod"})
    assert response.status_code == 400 and "run only pinned images" in text(response)


def test_the_request_form_needs_the_deployer_role(login, viewer, prod, web):
    assert login(viewer).get("/deployments/new/?service=web").status_code == 403


# ---------------------------------------------------------------- deployments list and history

def test_the_deployment_list_filters_by_environment_service_and_state(login, viewer, deployer, make_env,
                                                                        make_service, web):
    dev, prod = make_env("dev"), make_env("prod", tier="production", required_approvals=1)
    make_service("api")
    in_dev, in_prod, api_prod = ask(deployer, dev), ask(deployer, prod), ask(deployer, prod, service="api")
    client = login(viewer)
    body = text(client.get("/deployments/?environment=prod&service=web&state=pending_approval"))
    assert f'href="/deployments/{in_prod.pk}/"' in body
    assert f'href="/deployments/{in_dev.pk}/"' not in body and f'href="/deployments/{api_prod.pk}/"' not in body


@pytest.mark.parametrize("count", [3, 30])
def test_the_deployment_list_costs_the_same_queries_for_3_and_30(login, viewer, deployer, make_env, web, count,
                                                                django_assert_max_num_queries):
    for i in range(count):
        deployed(deployer, make_env(f"env-{i}"), f"1.{i}.0")
    client = login(viewer)
    with django_assert_max_num_queries(8):
        response = client.get("/deployments/")
    assert len(re.findall(r'href="/deployments/\d+/"', text(response))) == count


def test_the_history_shows_release_requester_approvers_outcome_and_kind(login, viewer, approver, omar, deployer,
                                                                       prod, web):
    first = ask(deployer, prod, "1.0.0")
    approve_deployment(approver, first.pk)
    approve_deployment(omar, first.pk)
    Deployment.objects.filter(pk=first.pk).update(state="succeeded", finished_at=timezone.now())
    rejected = ask(deployer, prod, "1.1.0")
    reject_deployment(omar, rejected.pk, comment="no")
    body = text(login(viewer).get("/environments/prod/history/?service=web"))
    assert re.search(r"abe, omar\s*</td>", body) or "abe, omar</td>" in body
    assert "state-succeeded" in body and "state-rejected" in body and "by dee" in body
    assert f'<a href="/deployments/{rejected.pk}/">1.1.0</a>' in body


def test_the_history_shows_rollbacks(login, viewer, deployer, prod, web):
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    request_rollback(deployer, live.pk)
    assert '<span class="badge kind-rollback">rollback</span>' in text(login(viewer).get("/environments/prod/history/"))


# ---------------------------------------------------------------- what runs in an environment

def test_the_environment_page_loads_the_live_view(login, viewer, prod):
    body = text(login(viewer).get("/environments/prod/"))
    assert 'hx-get="/environments/prod/live/" hx-trigger="load" hx-swap="outerHTML"' in body


def test_the_live_view_shows_release_health_and_polls(login, viewer, deployer, prod, web):
    live = deployed(deployer, prod, "1.0.0")
    ServiceHealth.objects.create(environment=prod, service=web, status="degraded", ready_replicas=1,
                                 desired_replicas=3, checked_at=timezone.now(), detail="1 of 3 replicas ready")
    response = login(viewer).get("/environments/prod/live/", **HTMX)
    body = text(response)
    assert body.startswith('<section id="env-live"') and "<html" not in body
    assert 'hx-get="/environments/prod/live/" hx-trigger="every 1s" hx-swap="outerHTML" data-live-version="' in body
    assert f'<a href="/deployments/{live.pk}/">1.0.0</a>' in body
    assert '<span class="badge health-degraded">degraded</span> 1/3 ready' in body


def test_the_live_view_shows_which_colour_runs_which_release(login, viewer, deployer, prod, make_service):
    make_service("web", strategy="blue-green")
    deployed(deployer, prod, "1.0.0", minutes_ago=60, color="blue")
    deployed(deployer, prod, "1.1.0", minutes_ago=5, color="green")
    body = text(login(viewer).get("/environments/prod/live/", **HTMX))
    assert 'live: <span class="badge color-green">green</span>' in body
    assert '<span class="badge color-blue">blue</span> 1.0.0 <span class="muted">idle</span>' in body
    assert '<span class="badge color-green">green</span> 1.1.0 <strong>live</strong>' in body


def test_the_live_view_offers_rollback_when_there_is_a_target(login, deployer, prod, web, make_service):
    make_service("api")
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    only = deployed(deployer, prod, "2.0.0", service="api")
    body = text(login(deployer).get("/environments/prod/live/", **HTMX))
    assert f'action="/deployments/{live.pk}/rollback"' in body and "Roll back to 1.0.0" in body
    assert f'action="/deployments/{only.pk}/rollback"' not in body


def test_the_live_view_is_a_page_without_htmx(login, viewer, prod):
    body = text(login(viewer).get("/environments/prod/live/"))
    assert "<html" in body and "Nothing has been deployed to Prod yet" in body


# ---------------------------------------------------------------- releases

def test_the_release_list_shows_image_sha_and_who_registered(login, viewer, deployer, web):
    register_release(deployer, {"service": "web", "version": "1.4.2", "image": image("1.4.2"),
                                           "git_sha": "3f2a9c1"})
    body = text(login(viewer).get("/releases/"))
    assert "1.4.2" in body and image("1.4.2") in body and "3f2a9c1" in body and "by dee" in body
    assert "/releases/new/" not in body


def test_a_deployer_registers_a_release_through_the_form(login, deployer, web):
    response = login(deployer).post("/releases/new/", {"service": "web", "version": "2.0.0", "image": image("2.0.0"),
                                                       "git_sha": "0123abc", "notes": "New checkout"})
    assert response.status_code == 302 and response.url == "/releases/?service=web"
    assert Release.objects.get().created_by == deployer
    assert events("release.create", "success", actor="dee").exists()


def test_the_release_form_shows_errors(login, deployer, web):
    response = login(deployer).post("/releases/new/", {"service": "web", "version": "2", "image": "Not An Image"})
    assert response.status_code == 400 and "is not a valid OCI image reference" in text(response)
    assert not Release.objects.exists()


def test_the_release_form_is_refused_to_viewers(login, viewer, web):
    assert login(viewer).get("/releases/new/").status_code == 403
    assert login(viewer).post("/releases/new/", {"service": "web", "version": "1", "image": "web:1"}).status_code == 403
    assert events("release.create", "denied", actor="vic").exists()


# ---------------------------------------------------------------- layout

@pytest.mark.parametrize("url", ["/approvals/", "/deployments/", "/deployments/new/", "/deployments/new/?service=web",
                                 "/releases/", "/releases/new/", "/environments/prod/history/",
                                 "/environments/prod/live/", "DEPLOYMENT", "LIVE"])
def test_every_form_control_has_a_label(login, admin, deployer, prod, web, url):
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    pending = ask(deployer, prod, "1.2.0")
    url = {"DEPLOYMENT": f"/deployments/{pending.pk}/", "LIVE": f"/deployments/{live.pk}/"}.get(url, url)
    response = login(admin).get(url)
    assert response.status_code == 200
    parser = FormControls()
    parser.feed(text(response))
    assert parser.missing() == [] and parser.fake_buttons == []
