"""Approval of environment requests (deployments' rule and inbox), extension, expiry and deletion."""
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from environments.expiry import notify_expiring
from environments.models import Environment
from environments.teardown import expire_environments
from portal.audit.models import AuditEvent
from portal.jobs.models import Job
from portal.jobs.services import run_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def requester(make_user):
    return make_user("rita", "deployer")


def request_staging(api, user, name="staging-eu"):
    response = api(user).post("/api/v1/environments", {"name": name, "template": "staging"})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "requested"
    return response.json()


def test_a_staging_request_is_provisioned_once_an_approver_agrees(api, requester, approver, cluster, sandbox, provision):
    request_staging(api, requester)
    response = api(approver).post("/api/v1/environments/staging-eu/approve", {"comment": "capacity checked"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "provisioning"
    assert body["approvals"][0]["user"] == "abe" and body["approvals"][0]["decision"] == "approve"
    assert AuditEvent.objects.filter(action="environment.approve", actor="abe", environment="staging-eu").exists()
    assert provision("staging-eu").state == "succeeded"
    assert Environment.objects.get(slug="staging-eu").status == "ready"
    assert sandbox.get("resourcequotas", "gantry-quota", "staging-eu")["spec"]["hard"]["requests.cpu"] == "20"


def test_the_requester_cannot_approve_their_own_environment(api, make_user, cluster):
    both = make_user("bo", "deployer", "approver")
    request_staging(api, both)
    response = api(both).post("/api/v1/environments/staging-eu/approve", {})
    assert response.status_code == 403
    assert "someone other than the requester" in response.json()["detail"]
    assert Environment.objects.get(slug="staging-eu").status == "requested"
    assert AuditEvent.objects.filter(action="environment.approve", outcome="denied", actor="bo").exists()


def test_production_needs_two_approvers_each_deciding_once(api, requester, make_user, cluster):
    first, second = make_user("a1", "approver"), make_user("a2", "approver")
    api(requester).post("/api/v1/environments", {"name": "prod-eu", "template": "production"})
    assert api(first).post("/api/v1/environments/prod-eu/approve", {}).json()["status"] == "requested"
    again = api(first).post("/api/v1/environments/prod-eu/approve", {})
    assert again.status_code == 403 and "already decided" in again.json()["detail"]
    assert api(second).post("/api/v1/environments/prod-eu/approve", {}).json()["status"] == "provisioning"
    assert Job.objects.filter(kind="environment.provision", target_repr="prod-eu").count() == 1


def test_a_viewer_cannot_approve(api, requester, viewer, cluster):
    request_staging(api, requester)
    assert api(viewer).post("/api/v1/environments/staging-eu/approve", {}).status_code == 403


def test_a_rejection_needs_a_comment_and_closes_the_request(api, requester, approver, cluster):
    request_staging(api, requester)
    assert api(approver).post("/api/v1/environments/staging-eu/reject", {}).status_code == 400
    response = api(approver).post("/api/v1/environments/staging-eu/reject", {"comment": "use team-dev instead"})
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert not Job.objects.filter(kind="environment.provision").exists()
    late = api(approver).post("/api/v1/environments/staging-eu/approve", {})
    assert late.status_code == 409


def test_the_approvals_inbox_lists_environment_requests_next_to_deployments(login, requester, approver, cluster, api):
    request_staging(api, requester)
    page = login(approver).get("/approvals/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "staging-eu" in body and "Approve" in body
    mine = login(requester).get("/approvals/").content.decode()
    assert "staging-eu" not in mine


def test_the_nav_badge_counts_environment_requests_as_the_inbox_lists_them(login, requester, approver, cluster, api):
    request_staging(api, requester)
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "nav-approvals"}
    badge = login(approver).get("/approvals/count/", **poll).content.decode()
    assert '<span class="nav-count">1<span class="visually-hidden"> waiting for your decision</span>' in badge
    assert 'aria-label="1 waiting"' in login(approver).get("/approvals/badge.svg").content.decode()
    assert "nav-count" not in login(requester).get("/approvals/count/", **poll).content.decode()  # not theirs to decide


# ---------------------------------------------------------------- extend and expire

@pytest.fixture
def preview(api, requester, cluster, provision):
    response = api(requester).post("/api/v1/environments", {"name": "pr-5", "template": "preview", "ttl_hours": 24})
    assert response.status_code == 201
    provision("pr-5")
    return Environment.objects.get(slug="pr-5")


def test_the_owner_extends_within_the_template_maximum(api, requester, preview):
    before = preview.expires_at
    response = api(requester).post("/api/v1/environments/pr-5/extend", {"hours": 48})
    assert response.status_code == 200, response.content
    assert Environment.objects.get(slug="pr-5").expires_at == before + timedelta(hours=48)
    assert AuditEvent.objects.filter(action="environment.extend", actor="rita").exists()
    too_far = api(requester).post("/api/v1/environments/pr-5/extend", {"hours": 150})
    assert too_far.status_code == 400
    assert "past the maximum of 168 h" in too_far.json()["detail"]
    refused = AuditEvent.objects.get(action="environment.extend", outcome="denied")
    assert refused.actor == "rita" and "past the maximum of 168 h" in refused.detail["reason"]
    assert Environment.objects.get(slug="pr-5").expires_at == before + timedelta(hours=48)  # unchanged


def test_someone_else_cannot_extend(api, make_user, preview):
    other = make_user("otto", "deployer")
    assert api(other).post("/api/v1/environments/pr-5/extend", {"hours": 1}).status_code == 403


def test_an_environment_without_ttl_cannot_be_extended(api, admin, cluster, provision):
    api(admin).post("/api/v1/environments", {"name": "team-a", "template": "team-dev"})
    response = api(admin).post("/api/v1/environments/team-a/extend", {"hours": 5})
    assert response.status_code == 409 and "no time to live" in response.json()["detail"]
    assert "no time to live" in AuditEvent.objects.get(action="environment.extend", outcome="denied").detail["reason"]


def test_owners_are_told_24_hours_and_1_hour_before_expiry_once_each(preview, requester, django_capture_on_commit_callbacks):
    requester.email = "rita@example.com"
    requester.save()
    expires = preview.expires_at
    assert notify_expiring(now=expires - timedelta(hours=30)) == 0
    assert notify_expiring(now=expires - timedelta(hours=23)) == 1
    assert notify_expiring(now=expires - timedelta(hours=22)) == 0
    assert notify_expiring(now=expires - timedelta(minutes=50)) == 1
    jobs = Job.objects.filter(kind="environment.expiry_notice").order_by("created_at")
    assert [j.params["notice"] for j in jobs] == ["24h", "1h"]
    for job in jobs:
        run_job(str(job.pk))
    assert [m.subject for m in mail.outbox] == ["[Gantry] pr-5 expires in 24h", "[Gantry] pr-5 expires in 1h"]
    assert mail.outbox[0].to == ["rita@example.com"] and "Extend it" in mail.outbox[0].body


def test_the_reaper_tears_down_expired_ones_and_leaves_the_rest(api, requester, admin, cluster, sandbox, provision):
    client = api(requester)
    for name in ("pr-1", "pr-2"):
        assert client.post("/api/v1/environments", {"name": name, "template": "preview"}).status_code == 201
        provision(name)
    api(admin).post("/api/v1/environments", {"name": "team-b", "template": "team-dev"})
    provision("team-b")
    Environment.objects.filter(slug="pr-1").update(expires_at=timezone.now() - timedelta(hours=2))
    clock = timezone.now() + timedelta(hours=1)  # pr-2 still has 71 hours; team-b has no TTL
    assert expire_environments(now=clock) == 1
    job = Job.objects.get(kind="environment.teardown")
    run_job(str(job.pk))
    assert Environment.objects.get(slug="pr-1").status == "deleted"
    assert Environment.objects.get(slug="pr-1").deleted_at is not None
    assert sandbox.get("namespaces", "pr-1") is None
    assert Environment.objects.get(slug="pr-2").status == "ready" and sandbox.get("namespaces", "pr-2")
    assert Environment.objects.get(slug="team-b").status == "ready" and sandbox.get("namespaces", "team-b")
    assert expire_environments(now=clock + timedelta(days=365)) == 1  # only pr-2; never team-b
    assert AuditEvent.objects.filter(action="environment.expired", environment="pr-1").exists()
    assert AuditEvent.objects.filter(action="environment.deleted", environment="pr-1").exists()


def test_the_owner_deletes_their_preview_and_its_name_stays_taken(api, requester, preview, sandbox):
    response = api(requester).delete("/api/v1/environments/pr-5")
    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    run_job(response.json()["job"])
    assert Environment.objects.get(slug="pr-5").status == "deleted"
    assert sandbox.get("namespaces", "pr-5") is None
    again = api(requester).post("/api/v1/environments", {"name": "pr-5", "template": "preview"})
    assert again.status_code == 409
    assert "belonged to an environment that was deleted" in again.json()["detail"]


def test_deleting_production_waits_for_another_admins_approval(api, admin, make_user, make_env, cluster):
    make_env("prod", tier="production", cluster=cluster, required_approvals=1)
    response = api(admin).delete("/api/v1/environments/prod")
    assert response.status_code == 202
    assert response.json()["status"] == "ready" and response.json()["pending_approval"] == "delete"
    assert api(admin).post("/api/v1/environments/prod/approve", {}).status_code == 403
    approver = make_user("ann", "approver")
    answer = api(approver).post("/api/v1/environments/prod/approve", {})
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "deleting"
    assert AuditEvent.objects.filter(action="environment.delete_request", actor="ada").exists()


def test_a_deployer_cannot_delete_someone_elses_preview(api, make_user, preview):
    other = make_user("otto", "deployer")
    assert api(other).delete("/api/v1/environments/pr-5").status_code == 403


@pytest.mark.parametrize("count", [3, 30])
def test_the_inbox_costs_the_same_queries_for_3_and_30_environment_requests(
        login, api, requester, approver, cluster, count, django_assert_max_num_queries):
    from environments.self_service import request_environment

    for i in range(count):
        request_environment(requester, {"name": f"stage-{i}", "template": "staging"})
    client = login(approver)
    with django_assert_max_num_queries(11):  # 9, and the live inbox's versions of requests and restores
        response = client.get("/approvals/")
    assert response.content.decode().count('action="/environments/stage-') == 2 * count
