import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.utils import timezone

from deployments.actions import approve_deployment, request_deployment
from deployments.models import Approval, Deployment, Release
from deployments.releases import register_release
from deployments.scheduling import start_due_deployments
from deployments.worker_callbacks import finish_deployment, mark_running
from portal.audit.models import AuditEvent
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db
DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def release(web, deployer):
    return register_release(deployer, {"service": "web", "version": "1.4.2",
                                                  "image": f"registry.example.com/shop/web:1.4.2@{DIGEST}",
                                                  "git_sha": "3f2a9c1"})


@pytest.fixture
def approver2(make_user):
    return make_user("omar", "approver")


def request_prod(api, user, release, **extra):
    return api(user).post("/api/v1/deployments", {"release": release.pk, "environment": "prod", **extra})


# ------------------------------------------------------------------ releases

def test_a_deployer_registers_a_release(api, deployer, web):
    response = api(deployer).post("/api/v1/releases", {"service": "web", "version": "2.0.0",
                                                        "image": f"ghcr.io/acme/web:2.0.0@{DIGEST}",
                                                        "git_sha": "0123abc", "notes": "New checkout"})
    assert response.status_code == 201, response.content
    assert response.json()["id"] and response.json()["image"].endswith(DIGEST)
    assert AuditEvent.objects.filter(action="release.create", actor="dee").exists()


@pytest.mark.parametrize("payload, status, message", [
    ({"service": "nope", "version": "1", "image": "web:1"}, 400, "no service named 'nope'"),
    ({"service": "web", "version": "1", "image": "Not A Reference!"}, 400, "not a valid OCI image reference"),
    ({"service": "web", "version": "1", "image": "web:1", "git_sha": "xyz"}, 400, "git_sha"),
    ({"service": "web", "version": "", "image": "web:1"}, 400, "version"),
])
def test_bad_releases_are_refused(api, deployer, web, payload, status, message):
    response = api(deployer).post("/api/v1/releases", payload)
    assert response.status_code == status
    assert message in str(response.json()["detail"])
    assert not Release.objects.exists()


def test_a_version_is_bound_to_one_image(api, deployer, release):
    response = api(deployer).post("/api/v1/releases", {"service": "web", "version": "1.4.2",
                                                        "image": "registry.example.com/shop/web:other"})
    assert response.status_code == 409
    assert "already registered with image" in response.json()["detail"]


@pytest.mark.parametrize("role", ["viewer", "approver"])
def test_only_deployers_register_releases(api, make_user, web, role):
    response = api(make_user("u", role)).post("/api/v1/releases", {"service": "web", "version": "1", "image": "web:1"})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="release.create", outcome="denied").exists()


# ------------------------------------------------------------------ requests and approvals

def test_a_production_request_waits_for_two_approvals(api, deployer, prod, release):
    response = request_prod(api, deployer, release)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "pending_approval"
    assert body["approvals_required"] == 2 and body["approvals"] == []
    assert body["requested_by"] == "dee"


def test_the_requester_cannot_approve_their_own_deployment(api, make_user, prod, release):
    both = make_user("bo", "deployer", "approver")
    deployment_id = request_prod(api, both, release).json()["id"]
    response = api(both).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    assert response.status_code == 403
    assert "self-approval" in response.json()["detail"]
    assert not Approval.objects.exists()
    assert AuditEvent.objects.filter(action="deployment.approve", outcome="denied", actor="bo").exists()


def test_an_approver_for_another_environment_cannot_approve(api, make_user, make_env, deployer, prod, release):
    other = make_user("ola", ("approver", make_env("dev")), ("viewer", prod))
    deployment_id = request_prod(api, deployer, release).json()["id"]
    response = api(other).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    assert response.status_code == 403
    assert "approver role for prod" in response.json()["detail"]


def test_the_same_approver_cannot_approve_twice(api, deployer, approver, prod, release):
    deployment_id = request_prod(api, deployer, release).json()["id"]
    client = api(approver)
    assert client.post(f"/api/v1/deployments/{deployment_id}/approve", {"comment": "lgtm"}).status_code == 200
    again = client.post(f"/api/v1/deployments/{deployment_id}/approve", {})
    assert again.status_code == 403
    assert "already decided" in again.json()["detail"]
    assert Approval.objects.count() == 1


def test_two_approvals_queue_the_deployment_and_create_one_job(api, deployer, approver, approver2, prod, release):
    deployment_id = request_prod(api, deployer, release).json()["id"]
    first = api(approver).post(f"/api/v1/deployments/{deployment_id}/approve", {"comment": "checked the diff"})
    assert first.json()["state"] == "pending_approval"
    assert first.json()["approvals_valid"] == 1
    second = api(approver2).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    body = second.json()
    assert body["state"] == "queued"
    assert [a["user"] for a in body["approvals"]] == ["abe", "omar"]
    assert body["approvals"][0]["comment"] == "checked the diff"
    assert body["job"]["state"] == "queued"
    assert Job.objects.filter(kind="deployment.apply").count() == 1
    actions = list(AuditEvent.objects.filter(target_type="deployments.deployment").order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["deployment.request", "deployment.approve", "deployment.approve", "deployment.approved",
                       "deployment.queued"]


def test_an_approval_records_what_was_approved(api, deployer, approver, prod, release):
    deployment_id = request_prod(api, deployer, release).json()["id"]
    api(approver).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    approval = Approval.objects.get()
    deployment = Deployment.objects.get(pk=deployment_id)
    assert approval.image == release.image
    assert approval.manifest_hash == deployment.manifest_hash
    event = AuditEvent.objects.get(action="deployment.approve")
    assert event.detail["image"] == release.image and event.detail["manifest_hash"] == deployment.manifest_hash


def test_changed_manifests_void_earlier_approvals(api, admin, deployer, approver, approver2, prod, release, web):
    deployment_id = request_prod(api, deployer, release).json()["id"]
    api(approver).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    changed = web.manifest.replace("cpu: 250m", "cpu: 300m")
    assert api(admin).patch("/api/v1/services/web", {"manifest": changed}).status_code == 200
    body = api(approver2).post(f"/api/v1/deployments/{deployment_id}/approve", {}).json()
    assert body["state"] == "pending_approval"
    assert body["approvals_valid"] == 1
    assert [a["counts"] for a in body["approvals"]] == [False, True]
    assert AuditEvent.objects.filter(action="deployment.manifests_changed").exists()


def test_reject_needs_a_comment_and_closes_decisions(api, deployer, approver, approver2, prod, release):
    deployment_id = request_prod(api, deployer, release).json()["id"]
    no_comment = api(approver).post(f"/api/v1/deployments/{deployment_id}/reject", {"comment": "  "})
    assert no_comment.status_code == 400
    rejected = api(approver).post(f"/api/v1/deployments/{deployment_id}/reject", {"comment": "missing migration"})
    assert rejected.json()["state"] == "rejected"
    late = api(approver2).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    assert late.status_code == 403
    assert "rejected" in late.json()["detail"]


def test_a_comment_over_the_limit_is_refused(api, deployer, approver, prod, release):
    deployment_id = request_prod(api, deployer, release).json()["id"]
    response = api(approver).post(f"/api/v1/deployments/{deployment_id}/approve", {"comment": "x" * 2001})
    assert response.status_code == 400
    assert not Approval.objects.exists()


def test_the_checklist_must_be_ticked(api, deployer, approver, prod, release):
    prod.checklist = ["DB migration reviewed", "On-call informed"]
    prod.save()
    deployment_id = request_prod(api, deployer, release).json()["id"]
    partial = api(approver).post(f"/api/v1/deployments/{deployment_id}/approve", {"checklist": ["On-call informed"]})
    assert partial.status_code == 400
    assert "DB migration reviewed" in str(partial.json()["detail"])
    full = api(approver).post(f"/api/v1/deployments/{deployment_id}/approve",
                              {"checklist": ["DB migration reviewed", "On-call informed"]})
    assert full.status_code == 200
    assert Approval.objects.get().checklist == ["DB migration reviewed", "On-call informed"]


def test_unknown_release_or_environment(api, deployer, release):
    response = api(deployer).post("/api/v1/deployments", {"release": 999, "environment": "nowhere"})
    assert response.status_code == 400
    detail = str(response.json()["detail"])
    assert "no release" in detail and "no environment 'nowhere'" in detail


def test_a_viewer_cannot_request(api, viewer, prod, release):
    response = request_prod(api, viewer, release)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="deployment.request", outcome="denied").exists()


def test_latest_images_are_refused_in_production(api, deployer, prod, web):
    latest = register_release(deployer, {"service": "web", "version": "9", "image": "web:latest"})
    response = request_prod(api, deployer, latest)
    assert response.status_code == 400
    assert "latest" in response.json()["detail"]
    refused = AuditEvent.objects.get(action="deployment.request", outcome="denied")  # a refused request, audited
    assert refused.actor == deployer.username and "latest" in refused.detail["reason"]
    assert not Deployment.objects.filter(release=latest).exists()


# ------------------------------------------------------------------ windows, freezes, break-glass

WEEKDAY_MORNINGS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "12:00",
                     "timezone": "Europe/Berlin"}]
SUNDAY_NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # closed: no window on Sundays
MONDAY_TEN_BERLIN = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Berlin: open


def test_start_now_outside_the_window_is_refused_with_409(api, deployer, prod, release, clock):
    prod.deployment_windows = WEEKDAY_MORNINGS
    prod.save()
    clock.set(SUNDAY_NOON)
    response = request_prod(api, deployer, release, start_now=True)
    assert response.status_code == 409
    assert "window" in response.json()["detail"]
    assert not Deployment.objects.exists()
    assert AuditEvent.objects.filter(action="deployment.request", outcome="denied").exists()


def test_outside_the_window_an_approved_deployment_waits_then_starts(api, deployer, approver, approver2, prod, release,
                                                                    clock):
    prod.deployment_windows = WEEKDAY_MORNINGS
    prod.save()
    clock.set(SUNDAY_NOON)
    deployment_id = request_prod(api, deployer, release).json()["id"]
    api(approver).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    assert api(approver2).post(f"/api/v1/deployments/{deployment_id}/approve", {}).json()["state"] == "approved"
    assert start_due_deployments() == 0
    clock.set(MONDAY_TEN_BERLIN)  # the window opens: the scheduler's next round starts it
    assert start_due_deployments() == 1
    assert Deployment.objects.get(pk=deployment_id).state == "queued"


def test_a_freeze_refuses_requests_and_names_itself(api, deployer, prod, release):
    prod.freeze_until = timezone.now() + timedelta(days=2)
    prod.freeze_reason = "Black Friday"
    prod.save()
    response = request_prod(api, deployer, release)
    assert response.status_code == 409
    assert "frozen until" in response.json()["detail"] and "Black Friday" in response.json()["detail"]


def test_break_glass_needs_an_admin_a_reason_and_one_more_approval(api, admin, deployer, approver, approver2,
                                                                    make_user, prod, release):
    prod.freeze_until = timezone.now() + timedelta(days=2)
    prod.freeze_reason = "Black Friday"
    prod.save()
    assert request_prod(api, deployer, release, break_glass={"reason": "hotfix"}).status_code == 403
    assert request_prod(api, admin, release, break_glass={"reason": " "}).status_code == 400
    response = request_prod(api, admin, release, break_glass={"reason": "payment outage hotfix"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["break_glass"] is True and body["approvals_required"] == 3
    third = make_user("tia", "approver")
    for user in (approver, approver2):
        assert api(user).post(f"/api/v1/deployments/{body['id']}/approve", {}).json()["state"] == "pending_approval"
    assert api(third).post(f"/api/v1/deployments/{body['id']}/approve", {}).json()["state"] == "queued"
    assert AuditEvent.objects.filter(action="deployment.request", detail__break_glass=True).exists()


# ------------------------------------------------------------------ promotion order, cancel, queueing

def test_production_only_takes_releases_that_succeeded_in_staging(api, deployer, make_env, prod, release):
    staging = make_env("staging", tier="staging")
    prod.promotion_from = staging
    prod.save()
    refused = request_prod(api, deployer, release)
    assert refused.status_code == 409
    assert "succeeded in staging" in refused.json()["detail"]
    Deployment.objects.create(release=release, environment=staging, service=release.service, state="succeeded",
                              image=release.image, manifest_hash="x", finished_at=timezone.now())
    assert request_prod(api, deployer, release).status_code == 201


def test_the_requester_cancels_and_others_cannot(api, deployer, make_user, prod, release):
    deployment_id = request_prod(api, deployer, release).json()["id"]
    other = make_user("oz", "deployer")
    assert api(other).post(f"/api/v1/deployments/{deployment_id}/cancel", {}).status_code == 403
    response = api(deployer).post(f"/api/v1/deployments/{deployment_id}/cancel", {"reason": "wrong build"})
    assert response.json()["state"] == "cancelled"
    assert api(deployer).post(f"/api/v1/deployments/{deployment_id}/cancel", {}).status_code == 409


def test_a_second_deployment_of_the_same_service_waits_in_queued(api, deployer, make_env, web, release):
    make_env("dev")
    second_release = register_release(deployer, {"service": "web", "version": "1.4.3", "image": "web:1.4.3"})
    first = api(deployer).post("/api/v1/deployments", {"release": release.pk, "environment": "dev"}).json()
    second = api(deployer).post("/api/v1/deployments", {"release": second_release.pk, "environment": "dev"}).json()
    assert first["state"] == second["state"] == "queued"
    assert first["job"] is not None and second["job"] is None
    mark_running(first["id"])
    finish_deployment(first["id"], True)
    assert Deployment.objects.get(pk=second["id"]).job_id is not None


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_the_same_moment_give_two_approvals_and_one_job(make_user, make_env, make_service):
    make_env("prod", tier="production", required_approvals=2, prevent_self_approval=True)
    make_service("web")
    requester = make_user("dee", "deployer")
    release = register_release(requester, {"service": "web", "version": "1", "image": "web:1"})
    deployment = request_deployment(requester, {"release": release.pk, "environment": "prod"})
    approvers = [make_user(f"a{n}", "approver") for n in range(2)]
    barrier = threading.Barrier(2)
    errors = []

    def approve(user):
        try:
            barrier.wait()
            approve_deployment(user, deployment.pk)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Approval.objects.filter(deployment=deployment).count() == 2
    assert Deployment.objects.get(pk=deployment.pk).state == "queued"
    assert Job.objects.filter(kind="deployment.apply").count() == 1


# ------------------------------------------------------------------ notifications

class Hook(BaseHTTPRequestHandler):
    received = []
    status = 200

    def do_POST(self):
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_approval_needed_goes_to_the_webhook_and_to_approvers_by_mail(api, deployer, make_user, prod, release,
                                                                      settings, mailoutbox,
                                                                      django_capture_on_commit_callbacks):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    try:
        settings.GANTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # an on-premises chat server
        prod.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        prod.save()
        approver = make_user("rita", "approver")
        approver.email = "rita@example.com"
        approver.save()
        settings.GANTRY_JOBS_EAGER = True
        with django_capture_on_commit_callbacks(execute=True):
            request_prod(api, deployer, release)
    finally:
        server.shutdown()
    assert Hook.received and "Approval needed" in Hook.received[0]["text"]
    assert "web 1.4.2" in Hook.received[0]["text"]
    assert [m.to for m in mailoutbox] == [["rita@example.com"]]
    assert Job.objects.get(kind="notification.send").state == "succeeded"


def test_a_notification_sent_again_delivers_only_what_the_earlier_attempt_did_not(
        api, admin, deployer, make_user, prod, release, settings, mailoutbox, django_capture_on_commit_callbacks):
    from portal.jobs.services import retry_job

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received, Hook.status = [], 503  # the chat server is down; the mail goes out
    try:
        settings.GANTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
        prod.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        prod.save()
        rita = make_user("rita", "approver")
        rita.email = "rita@example.com"
        rita.save()
        settings.GANTRY_JOBS_EAGER = True
        with django_capture_on_commit_callbacks(execute=True):
            request_prod(api, deployer, release)
        job = Job.objects.get(kind="notification.send")
        assert job.state == "failed" and "webhook" in job.error
        assert len(mailoutbox) == 1 and len(Hook.received) == 1

        Hook.status = 200  # back: a person retries the failed job
        with django_capture_on_commit_callbacks(execute=True):
            retry_job(job, user=admin)
    finally:
        server.shutdown()
        Hook.status = 200
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 2
    assert len(Hook.received) == 2  # the webhook had not been delivered: it is now
    assert len(mailoutbox) == 1, "the e-mail went out on the first attempt and must not go out twice"
    lines = list(job.log_lines.values_list("message", flat=True))
    assert "e-mail already sent by an earlier attempt; not sent again" in lines


def test_an_approval_of_manifests_the_approver_did_not_see_is_refused(api, admin, deployer, approver, prod, release, web):
    body = request_prod(api, deployer, release).json()
    seen = body["manifest_hash"]
    api(admin).patch("/api/v1/services/web", {"manifest": web.manifest.replace("cpu: 250m", "cpu: 300m")})
    response = api(approver).post(f"/api/v1/deployments/{body['id']}/approve", {"manifest_hash": seen})
    assert response.status_code == 409
    assert "changed after you loaded" in response.json()["detail"]
    assert not Approval.objects.exists()


def test_a_non_approver_is_refused_before_input_is_checked(api, deployer, viewer, prod, release):
    prod.checklist = ["DB migration reviewed"]
    prod.save()
    deployment_id = request_prod(api, deployer, release).json()["id"]
    response = api(viewer).post(f"/api/v1/deployments/{deployment_id}/approve", {})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="deployment.approve", outcome="denied", actor="vic").exists()


# A window whose end is before its start runs past midnight (Fri 22:00 to Sat 02:00, Berlin).
FRIDAY_NIGHTS = [{"days": ["fri"], "start": "22:00", "end": "02:00", "timezone": "Europe/Berlin"}]


@pytest.mark.parametrize(("moment", "next_opening"), [
    (datetime(2026, 11, 27, 20, 30, tzinfo=UTC), "Fri 2026-11-27 22:00 CET"),  # Fri 21:30 Berlin: not yet
    (datetime(2026, 11, 27, 21, 0, tzinfo=UTC), None),                        # Fri 22:00: opens
    (datetime(2026, 11, 27, 23, 30, tzinfo=UTC), None),                       # Sat 00:30: past midnight, open
    (datetime(2026, 11, 28, 0, 59, tzinfo=UTC), None),                        # Sat 01:59
    (datetime(2026, 11, 28, 1, 0, tzinfo=UTC), "Fri 2026-12-04 22:00 CET"),   # Sat 02:00: closed
    (datetime(2026, 11, 28, 23, 30, tzinfo=UTC), "Fri 2026-12-04 22:00 CET"), # Sun 00:30: Saturday starts none
])
def test_a_window_past_midnight_is_open_until_its_end_the_next_day(api, deployer, prod, release, clock, moment,
                                                                   next_opening):
    prod.deployment_windows = FRIDAY_NIGHTS
    prod.save()
    clock.set(moment)
    response = request_prod(api, deployer, release, start_now=True)
    if next_opening is None:
        assert response.status_code == 201, response.content
    else:
        assert response.status_code == 409
        assert f"the next window opens {next_opening}" in response.json()["detail"]


def test_the_approvals_api_answers_the_oldest_first_up_to_its_limit(api, deployer, approver, prod, web):
    ids = []
    for i in range(4):
        release = register_release(deployer, {"service": "web", "version": f"2.{i}", "image": f"web:2.{i}"})
        ids.append(request_prod(api, deployer, release).json()["id"])
    response = api(approver).get("/api/v1/approvals", {"limit": 3})
    assert response.status_code == 200
    assert [d["id"] for d in response.json()] == ids[:3]
    assert response.json()[0]["approvals_required"] == 2


def test_approval_needed_mail_goes_to_the_approvers_and_admins_of_the_approver_groups(
        deployer, make_user, make_env, web, settings, mailoutbox, django_capture_on_commit_callbacks):
    group = Group.objects.create(name="release-managers")
    env = make_env("payments", tier="production", required_approvals=1, approver_groups=["release-managers"])
    for name, role, member in (("ina", "approver", True), ("oz", "approver", False), ("bea", "admin", True),
                               ("al", "admin", False), ("dan", "deployer", True)):
        user = make_user(name, role)
        user.email = f"{name}@example.com"
        user.save()
        if member:
            user.groups.add(group)
    release = register_release(deployer, {"service": "web", "version": "3.0", "image": "web:3.0"})
    settings.GANTRY_JOBS_EAGER = True
    with django_capture_on_commit_callbacks(execute=True):
        request_deployment(deployer, {"release": release.pk, "environment": env.slug})
    assert [sorted(m.to) for m in mailoutbox] == [["bea@example.com", "ina@example.com"]]

