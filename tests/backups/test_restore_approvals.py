"""Production restores in the approvals inbox: the page shows what will be restored where, an approver
decides from the browser by the deployments' rule (audited, refusals too), and GET /api/v1/approvals
lists them next to deployments and environment requests."""
import pytest

from deployments.actions import request_deployment
from deployments.releases import register_release
from environments.backups.models import Restore
from environments.backups.services import request_restore, start_backup
from portal.audit.models import AuditEvent

from .conftest import run_jobs_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def rita(make_user, prod):
    return make_user("rita", ("approver", prod))


@pytest.fixture
def pending_restore(admin, prod, source_db, make_target, tmp_path, scratch_databases):
    target = make_target(prod, source_db, {"kind": "local", "path": str(tmp_path)})
    backup = run_jobs_of(start_backup(target, user=admin))
    restore = request_restore(backup, user=admin, data={"database": scratch_databases()})
    assert restore.state == "pending_approval"
    return restore


def inbox(client):
    response = client.get("/approvals/")
    assert response.status_code == 200
    return response.content.decode()


def test_an_approver_sees_what_will_be_restored_where_and_approves_it_from_the_inbox(client, rita, pending_restore):
    backup = pending_restore.backup
    client.force_login(rita)
    html = inbox(client)
    assert f"/restores/{pending_restore.pk}/approve/" in html and f"/restores/{pending_restore.pk}/reject/" in html
    row = html[html.index('class="restore-approval"'):html.index("</tr>", html.index('class="restore-approval"'))]
    assert f"#{backup.pk} of <strong>main-db</strong>" in row
    assert pending_restore.destination_display in row and "(a new database)" in row
    assert backup.finished_at.strftime("%Y-%m-%d %H:%M:%S") in row  # taken at
    assert "KB" in row or "MB" in row  # its size
    assert f"Restore backup #{backup.pk} of prod/main-db into {pending_restore.destination_display}?" in row
    assert 'aria-label="1 waiting"' in client.get("/approvals/badge.svg").content.decode()  # the badge counts it

    response = client.post(f"/restores/{pending_restore.pk}/approve/", {"comment": "incident 42"}, follow=True)
    text = response.content.decode()
    assert f"You approved restore #{pending_restore.pk}; it is queued into {pending_restore.destination_display}." \
        in text
    restore = Restore.objects.get(pk=pending_restore.pk)
    assert restore.state == "queued" and restore.job is not None
    assert restore.approvals[0]["user"] == "rita" and restore.approvals[0]["comment"] == "incident 42"
    event = AuditEvent.objects.get(action="backup.restore.approve", outcome="success")
    assert event.actor == "rita" and event.outcome == "success"
    assert 'class="restore-approval"' not in inbox(client)  # decided: gone from the inbox
    assert run_jobs_of(restore).state == "succeeded"


def test_the_requester_does_not_see_their_own_restore_and_is_refused_with_the_reason(client, admin, pending_restore):
    client.force_login(admin)
    assert 'class="restore-approval"' not in inbox(client)  # prod prevents self-approval
    response = client.post(f"/restores/{pending_restore.pk}/approve/", follow=True)
    assert "prod prevents self-approval: someone other than the requester must approve" in response.content.decode()
    assert Restore.objects.get(pk=pending_restore.pk).state == "pending_approval"
    denied = AuditEvent.objects.get(action="backup.restore.approve", outcome="denied")
    assert denied.actor == "ada" and "self-approval" in denied.detail["reason"]


def test_a_viewer_is_refused_and_audited_and_an_outsider_gets_404(client, make_user, make_env, prod, pending_restore):
    client.force_login(make_user("vic2", ("viewer", prod)))
    response = client.post(f"/restores/{pending_restore.pk}/approve/", follow=True)
    assert "you need the approver role for prod to approve restores there" in response.content.decode()
    assert AuditEvent.objects.filter(action="backup.restore.approve", outcome="denied").count() == 1
    client.force_login(make_user("out", ("approver", make_env("other"))))
    assert client.post(f"/restores/{pending_restore.pk}/approve/").status_code == 404
    assert Restore.objects.get(pk=pending_restore.pk).state == "pending_approval"


def test_a_rejection_from_the_inbox_needs_a_reason_and_then_the_restore_never_runs(client, rita, pending_restore):
    client.force_login(rita)
    response = client.post(f"/restores/{pending_restore.pk}/reject/", {"comment": "  "}, follow=True)
    assert "comment: say why the restore is rejected" in response.content.decode()
    assert Restore.objects.get(pk=pending_restore.pk).state == "pending_approval"
    response = client.post(f"/restores/{pending_restore.pk}/reject/", {"comment": "wrong backup"}, follow=True)
    assert f"You rejected restore #{pending_restore.pk}; it will not run." in response.content.decode()
    restore = Restore.objects.get(pk=pending_restore.pk)
    assert restore.state == "rejected" and restore.job is None
    assert AuditEvent.objects.get(action="backup.restore.reject", outcome="success").detail["comment"] == "wrong backup"
    assert AuditEvent.objects.filter(action="backup.restore.rejected").count() == 1  # the state change


def test_the_approvals_api_lists_restores_next_to_deployments_and_environment_requests(
        api, make_user, make_env, make_service, deployer, prod, rita, pending_restore):
    make_service("web")
    release = register_release(deployer, {"service": "web", "version": "1.0", "image": "web:1.0"})
    deployment = request_deployment(deployer, {"release": release.pk, "environment": "prod"})
    make_env("qa-new", tier="staging", status="requested", owner=deployer, guardrails={"required_approvals": 1})

    response = api(rita).get("/api/v1/approvals")
    assert response.status_code == 200
    items = response.json()
    kinds = [(item["kind"], item["id"]) for item in items]
    restore_item = next(item for item in items if item["kind"] == "restore")
    assert ("deploy", deployment.pk) in kinds and ("restore", pending_restore.pk) in kinds
    assert restore_item == restore_item | {
        "state": "pending_approval", "environment": "prod", "target": "main-db",
        "into": pending_restore.destination_display, "backup": pending_restore.backup_id,
        "backup_size_bytes": pending_restore.backup.size_bytes, "backup_sha256": pending_restore.backup.sha256,
        "requested_by": "ada", "approvals_required": 1, "approvals_valid": 0}
    assert restore_item["backup_taken_at"] == pending_restore.backup.finished_at.isoformat()
    assert [item["requested_at"] for item in items] == sorted(item["requested_at"] for item in items)
    deployment_item = next(item for item in items if item["kind"] == "deploy")
    assert {"release", "approvals", "manifest_hash", "approvals_required"} <= set(deployment_item)  # unchanged

    admin_view = api(make_user("root", "admin")).get("/api/v1/approvals").json()
    assert ("environment", "qa-new") in [(item["kind"], item.get("slug")) for item in admin_view]
    assert api(deployer).get("/api/v1/approvals").json() == []  # no approver role: nothing to decide


def test_the_inbox_costs_the_same_queries_for_one_and_many_waiting_restores(client, rita, pending_restore,
                                                                           django_assert_max_num_queries):
    client.force_login(rita)
    with django_assert_max_num_queries(12) as one:
        inbox(client)
    for _ in range(15):
        Restore.objects.create(backup=pending_restore.backup, state="pending_approval", database="another",
                               destination_display="postgres@127.0.0.1:5432/another",
                               requested_by=pending_restore.requested_by)
    with django_assert_max_num_queries(len(one.captured_queries)):
        html = inbox(client)
    assert html.count('class="restore-approval"') == 16


def test_a_decision_refused_only_under_the_lock_is_audited_and_changes_nothing(rita, pending_restore, monkeypatch):
    """Someone decided between the first check and the lock: the second check refuses, audited."""
    from deployments import restore_approvals
    from portal.errors import Forbidden

    real, calls = restore_approvals.restore_decision_refusal, []

    def first_passes_then_refuses(user, restore, decision):
        calls.append(restore.pk)
        return None if len(calls) == 1 else f"you already decided on restore #{restore.pk}"

    monkeypatch.setattr(restore_approvals, "restore_decision_refusal", first_passes_then_refuses)
    with pytest.raises(Forbidden, match=f"you already decided on restore #{pending_restore.pk}"):
        restore_approvals.decide_restore(rita, pending_restore, "approve")
    monkeypatch.setattr(restore_approvals, "restore_decision_refusal", real)
    restore = Restore.objects.get(pk=pending_restore.pk)
    assert restore.state == "pending_approval" and restore.approvals == []
    denied = AuditEvent.objects.get(action="backup.restore.approve", outcome="denied")
    assert denied.actor == "rita" and denied.detail["reason"] == f"you already decided on restore #{restore.pk}"
    assert not AuditEvent.objects.filter(action="backup.restore.approve", outcome="success").exists()


def test_a_decided_restore_is_closed_to_decisions_and_the_refusal_names_the_restore(client, rita, make_user, prod,
                                                                                    pending_restore):
    client.force_login(rita)
    client.post(f"/restores/{pending_restore.pk}/reject/", {"comment": "wrong backup"})
    assert Restore.objects.get(pk=pending_restore.pk).state == "rejected"
    client.force_login(make_user("omar", ("approver", prod)))
    response = client.post(f"/restores/{pending_restore.pk}/approve/", follow=True)
    assert f"restore #{pending_restore.pk} was rejected; decisions are closed" in response.content.decode()
    denied = AuditEvent.objects.get(action="backup.restore.approve", outcome="denied")
    assert denied.actor == "omar" and "deployment" not in denied.detail["reason"]
