"""A rollback only returns to an older release that succeeded there; an approval only counts while its
giver still holds the approver role (issue #7, item 9)."""
import pytest

from deployments.actions import approve_deployment, request_deployment, request_rollback
from deployments.live import live_and_rollback_targets, rollback_target
from deployments.models import Deployment
from deployments.releases import register_release
from deployments.scheduling import start_due_deployments
from deployments.worker_callbacks import finish_deployment, mark_running
from portal.accounts.models import RoleAssignment
from portal.audit.models import AuditEvent
from portal.errors import Conflict

pytestmark = pytest.mark.django_db


def _deploy(user, env, version, approvers=()):
    from deployments.models import Release

    release = Release.objects.filter(version=version).first() or register_release(
        user, {"service": "web", "version": version, "image": f"registry.example.com/web:{version}"})
    deployment = request_deployment(user, {"release": release.pk, "environment": env.slug})
    for approver in approvers:
        approve_deployment(approver, deployment.pk)
    mark_running(deployment.pk)
    finish_deployment(deployment.pk, True)
    return Deployment.objects.get(pk=deployment.pk)


def _run(deployment):
    mark_running(deployment.pk)
    finish_deployment(deployment.pk, True)
    return Deployment.objects.get(pk=deployment.pk)


@pytest.fixture
def prod(make_env, make_service):
    make_service("web")
    return make_env("prod", tier="production", required_approvals=1)


def test_after_a_rollback_the_newer_release_is_not_offered_again(api, make_user, prod):
    dee = make_user("dee", "deployer")
    rita = make_user("rita", "approver")
    _deploy(dee, prod, "1.0.0", [rita])
    newer = _deploy(dee, prod, "1.1.0", [rita])
    rollback = _run(request_rollback(dee, newer.pk, reason="errors"))
    assert rollback.release.version == "1.0.0"
    assert Deployment.objects.get(pk=newer.pk).state == "rolled_back"
    # what runs now is 1.0.0; rolling "back" to 1.1.0 would be a redeploy without approval
    assert rollback_target(rollback) is None
    live, target = live_and_rollback_targets(prod.pk)[rollback.service_id]
    assert live.pk == rollback.pk and target is None
    response = api(dee).post(f"/api/v1/deployments/{rollback.pk}/rollback", {"reason": "again"})
    assert response.status_code == 409
    assert "no earlier successful release" in response.json()["detail"]
    assert not Deployment.objects.filter(kind="rollback", release__version="1.1.0").exists()


def test_the_environment_page_does_not_offer_a_roll_forward(client, make_user, prod):
    dee = make_user("dee", "deployer")
    rita = make_user("rita", "approver")
    _deploy(dee, prod, "1.0.0", [rita])
    newer = _deploy(dee, prod, "1.1.0", [rita])
    _run(request_rollback(dee, newer.pk))
    client.force_login(dee)
    page = client.get("/environments/prod/").content.decode()
    assert "Roll back to 1.1.0" not in page


def test_a_rollback_goes_to_the_newest_older_release(make_user, prod):
    dee = make_user("dee", "deployer")
    rita = make_user("rita", "approver")
    _deploy(dee, prod, "1.0.0", [rita])
    _deploy(dee, prod, "1.1.0", [rita])
    live = _deploy(dee, prod, "1.2.0", [rita])
    assert rollback_target(live).release.version == "1.1.0"
    back = _run(request_rollback(dee, live.pk))
    assert rollback_target(back).release.version == "1.0.0"


def test_redeploying_an_older_release_is_not_a_rollback_target_for_newer_ones(make_user, prod):
    """1.0.0 redeployed after 1.1.0: a rollback from it may not go 'back' to the newer 1.1.0."""
    dee = make_user("dee", "deployer")
    rita = make_user("rita", "approver")
    _deploy(dee, prod, "1.0.0", [rita])
    _deploy(dee, prod, "1.1.0", [rita])
    again = _deploy(dee, prod, "1.0.0", [rita])
    assert rollback_target(again) is None


def test_an_approval_stops_counting_when_the_approver_loses_the_role(api, make_user, prod):
    dee = make_user("dee", "deployer")
    rita = make_user("rita", "approver")
    release = register_release(dee, {"service": "web", "version": "1.0.0",
                                                "image": "registry.example.com/web:1.0.0"})
    prod.deployment_windows = [{"days": [], "start": "00:00", "end": "00:01", "timezone": "UTC"}]
    prod.save()
    deployment = request_deployment(dee, {"release": release.pk, "environment": "prod"})
    approve_deployment(rita, deployment.pk)
    assert Deployment.objects.get(pk=deployment.pk).state == "approved"  # waits for its window
    RoleAssignment.objects.filter(user=rita).delete()
    body = api(dee).get(f"/api/v1/deployments/{deployment.pk}").json()
    assert body["approvals_valid"] == 0 and body["approvals"][0]["counts"] is False
    prod.deployment_windows = []
    prod.save()
    start_due_deployments()
    assert Deployment.objects.get(pk=deployment.pk).state == "pending_approval"


def test_the_role_is_checked_again_when_the_deployment_starts(make_user, prod):
    dee = make_user("dee", "deployer")
    rita = make_user("rita", "approver")
    release = register_release(dee, {"service": "web", "version": "1.0.0",
                                                "image": "registry.example.com/web:1.0.0"})
    deployment = request_deployment(dee, {"release": release.pk, "environment": "prod"})
    approve_deployment(rita, deployment.pk)
    assert Deployment.objects.get(pk=deployment.pk).state == "queued"
    rita.is_active = False
    rita.save()
    with pytest.raises(Conflict, match="approvals no longer suffice"):
        mark_running(deployment.pk)
    assert Deployment.objects.get(pk=deployment.pk).state == "queued"
    assert not AuditEvent.objects.filter(action="deployment.running").exists()
