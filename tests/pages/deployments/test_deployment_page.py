"""The deployment (approval) page: deciding, what changes, rollback."""
import re

from django.utils import timezone

from deployments.actions import approve_deployment, request_deployment
from deployments.models import Approval, Deployment, Service
from deployments.releases import register_release
from portal import kube
from portal.jobs.models import Job, JobLogLine
from tests.pages.conftest import events, text
from tests.pages.deployments.helpers import HTMX, ask, deployed, image, state_of

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


def test_the_rollback_button_waits_while_another_deployment_is_under_way(login, deployer, prod, web):
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    deployed(deployer, prod, "1.2.0", minutes_ago=0, state="queued")
    body = text(login(deployer).get(f"/deployments/{live.pk}/"))
    assert "Roll back to 1.0.0" not in body
    assert "It cannot be rolled back now: a deployment or rollback of web in prod is already approved or under way" in body
    live_view = text(login(deployer).get("/environments/prod/live/", **HTMX))
    assert "Roll back to" not in live_view

