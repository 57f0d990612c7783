import pytest

from environments.models import Environment
from portal.audit.models import AuditEvent
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db


def test_it_requires_authentication(api):
    response = api().get("/api/v1/environments")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_it_rejects_a_bad_token_and_audits_it(api):
    response = api(token="gty_not-a-real-token").get("/api/v1/environments")
    assert response.status_code == 401
    assert AuditEvent.objects.filter(action="auth.token_rejected", outcome="denied").exists()


def test_a_user_without_roles_is_forbidden(api, nobody):
    response = api(nobody).get("/api/v1/environments")
    assert response.status_code == 403
    assert "role" in response.json()["detail"]


def test_a_global_viewer_sees_every_environment(api, viewer, make_env):
    make_env("dev"), make_env("prod", tier="production")
    response = api(viewer).get("/api/v1/environments")
    assert response.status_code == 200
    assert {e["slug"] for e in response.json()} == {"dev", "prod"}


def test_a_scoped_viewer_sees_only_their_environment(api, make_user, make_env):
    dev, prod = make_env("dev"), make_env("prod", tier="production")
    scoped = make_user("sam", ("viewer", dev))
    client = api(scoped)
    assert [e["slug"] for e in client.get("/api/v1/environments").json()] == ["dev"]
    assert client.get("/api/v1/environments/prod").status_code == 404
    assert client.get("/api/v1/environments/dev").status_code == 200


def test_admin_creates_a_production_environment_and_it_is_audited(api, admin, cluster):
    response = api(admin).post("/api/v1/environments", {"name": "Production EU", "tier": "production",
                                                         "cluster": "sandbox"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "production-eu"
    assert body["namespace"] == "production-eu"
    assert body["status"] == "provisioning"
    assert body["prevent_self_approval"] is True
    assert body["required_approvals"] == 1
    assert AuditEvent.objects.filter(action="environment.create", actor="ada", environment="production-eu").exists()
    assert Job.objects.filter(kind="environment.provision", state="queued").count() == 1


def test_a_deployer_may_create_development_but_not_production(api, deployer, cluster):
    client = api(deployer)
    ok = client.post("/api/v1/environments", {"name": "Feature X", "tier": "preview"})
    assert ok.status_code == 201
    assert ok.json()["owner"] == "dee"
    refused = client.post("/api/v1/environments", {"name": "Prod 2", "tier": "production"})
    assert refused.status_code == 403
    assert not Environment.objects.filter(name="Prod 2").exists()
    denied = AuditEvent.objects.get(action="environment.create", outcome="denied")
    assert denied.actor == "dee"


@pytest.mark.parametrize("role", ["viewer", "approver"])
def test_viewers_and_approvers_cannot_create_environments(api, make_user, role):
    user = make_user("u", role)
    assert api(user).post("/api/v1/environments", {"name": "X", "tier": "development"}).status_code == 403


@pytest.mark.parametrize("payload, message", [
    ({"name": "Bad", "tier": "development", "slug": "Bad_Slug"}, "slug"),
    ({"name": "Bad", "tier": "nonsense"}, "tier"),
    ({"name": "Bad", "tier": "development", "cluster": "nope"}, "no cluster named 'nope'"),
    ({"name": "Bad", "tier": "development", "ttl_hours": 0}, "ttl_hours"),
    ({"tier": "development"}, "name"),
])
def test_bad_input_gets_a_clear_error_and_changes_nothing(api, admin, payload, message):
    response = api(admin).post("/api/v1/environments", payload)
    assert response.status_code == 400
    assert message in str(response.json()["detail"])
    assert not Environment.objects.exists()
    assert not AuditEvent.objects.filter(action="environment.create").exists()


def test_a_duplicate_slug_is_refused(api, admin, make_env):
    make_env("staging", tier="staging")
    response = api(admin).post("/api/v1/environments", {"name": "Other", "slug": "staging", "tier": "staging"})
    assert response.status_code == 400
    assert "already exists" in str(response.json()["detail"])
    assert Environment.objects.count() == 1


def test_admin_sets_protection_rules(api, admin, make_env):
    make_env("prod", tier="production")
    response = api(admin).patch("/api/v1/environments/prod", {
        "required_approvals": 2,
        "prevent_self_approval": True,
        "deployment_windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "02:00", "end": "04:00",
                                "timezone": "Asia/Seoul"}],
        "freeze": {"until": "2099-01-02T00:00:00+09:00", "reason": "year-end freeze"},
    })
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["required_approvals"] == 2
    assert body["deployment_windows"][0]["timezone"] == "Asia/Seoul"
    assert body["freeze"]["reason"] == "year-end freeze"
    event = AuditEvent.objects.get(action="environment.rules_update")
    assert event.changes["required_approvals"] == [0, 2]


def test_clearing_a_freeze_with_null(api, admin, make_env):
    make_env("prod", tier="production")
    client = api(admin)
    client.patch("/api/v1/environments/prod", {"freeze": {"until": "2099-01-01T00:00:00Z", "reason": "x"}})
    response = client.patch("/api/v1/environments/prod", {"freeze": None})
    assert response.json()["freeze"] is None


@pytest.mark.parametrize("payload, message", [
    ({"required_approvals": 11}, "0 to 10"),
    ({"deployment_windows": [{"days": ["mon"], "start": "02:00", "end": "04:00", "timezone": "Mars/Olympus"}]},
     "unknown time zone"),
    ({"deployment_windows": [{"days": ["funday"], "start": "02:00", "end": "04:00", "timezone": "UTC"}]}, "unknown day"),
    ({"deployment_windows": [{"days": ["mon"], "start": "25:00", "end": "04:00", "timezone": "UTC"}]}, "HH:MM"),
    ({"deployment_windows": [{"days": ["mon"], "start": "02:00", "end": "02:00", "timezone": "UTC"}]}, "length"),
    ({"freeze": {"until": "2000-01-01T00:00:00Z", "reason": "x"}}, "future"),
    ({"freeze": {"until": "2099-01-01T00:00:00Z"}}, "reason"),
    ({"slug": "renamed"}, "slug"),
])
def test_bad_rules_are_refused_and_change_nothing(api, admin, make_env, payload, message):
    make_env("prod", tier="production")
    response = api(admin).patch("/api/v1/environments/prod", payload)
    assert response.status_code == 400
    assert message in str(response.json()["detail"])
    env = Environment.objects.get(slug="prod")
    assert env.required_approvals == 0 and env.deployment_windows == [] and env.freeze_until is None


@pytest.mark.parametrize("role", ["viewer", "deployer", "approver"])
def test_only_admins_change_rules(api, make_user, make_env, role):
    make_env("prod", tier="production")
    user = make_user("u", role)
    response = api(user).patch("/api/v1/environments/prod", {"required_approvals": 0})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="environment.update", outcome="denied", actor="u").exists()


def test_an_environment_scoped_admin_may_change_that_environment_only(api, make_user, make_env):
    dev, other = make_env("dev"), make_env("other")
    scoped = make_user("sa", ("admin", dev))
    client = api(scoped)
    assert client.patch("/api/v1/environments/dev", {"team": "payments"}).status_code == 200
    assert client.patch("/api/v1/environments/other", {"team": "payments"}).status_code == 404


def test_delete_environment_is_for_admins_or_the_owner_and_audited(api, admin, deployer, make_env):
    make_env("dev")
    assert api(deployer).delete("/api/v1/environments/dev").status_code == 403
    response = api(admin).delete("/api/v1/environments/dev")
    assert response.status_code == 202
    assert response.json()["status"] == "deleted"  # no cluster: nothing to tear down
    assert Environment.objects.get(slug="dev").status == "deleted"  # kept for history
    assert [e["slug"] for e in api(admin).get("/api/v1/environments").json()] == []
    assert [e["slug"] for e in api(admin).get("/api/v1/environments", {"status": "deleted"}).json()] == ["dev"]
    assert AuditEvent.objects.filter(action="environment.delete", outcome="success").exists()
    assert AuditEvent.objects.filter(action="environment.deleted", outcome="success").exists()


def test_admin_sets_checklist_promotion_order_and_notifications(api, admin, make_env):
    make_env("staging", tier="staging")
    make_env("prod", tier="production")
    response = api(admin).patch("/api/v1/environments/prod", {
        "checklist": ["DB migration reviewed", "Rollback plan ready"],
        "promotion_from": "staging",
        "webhook_url": "https://hooks.slack.com/services/T000/B000/secretpart",
        "notify_emails": "release@example.com, sre@example.com",
        "replicas": 3,
    })
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["checklist"] == ["DB migration reviewed", "Rollback plan ready"]
    assert body["promotion_from"] == "staging"
    assert body["replicas"] == 3
    assert body["webhook_url"] == "https://hooks.slack.com/***"
    event = AuditEvent.objects.get(action="environment.rules_update")
    assert "secretpart" not in str(event.changes)


@pytest.mark.parametrize("payload, message", [
    ({"promotion_from": "nowhere"}, "no environment 'nowhere'"),
    ({"promotion_from": "prod"}, "cannot require itself"),
    ({"approver_groups": ["release-managers"]}, "no group named release-managers"),
    ({"notify_emails": "not-an-address"}, "not an e-mail address"),
    ({"webhook_url": "ftp://x"}, "http(s)"),
    ({"replicas": 0}, "1 to 100"),
])
def test_bad_advanced_rules_are_refused(api, admin, make_env, payload, message):
    make_env("prod", tier="production")
    response = api(admin).patch("/api/v1/environments/prod", payload)
    assert response.status_code == 400
    assert message in str(response.json()["detail"])
