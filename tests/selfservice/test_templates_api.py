"""Environment templates over the API: the seeded four, an admin defining one, bounds checked."""
import pytest

from environments.models import EnvironmentTemplate
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_four_seeded_templates_are_listed_with_their_guardrails(api, viewer):
    response = api(viewer).get("/api/v1/environment-templates")
    assert response.status_code == 200
    templates = {t["name"]: t for t in response.json()}
    assert set(templates) == {"preview", "team-dev", "staging", "production"}
    preview = templates["preview"]
    assert (preview["tier"], preview["ttl_hours"], preview["max_ttl_hours"]) == ("preview", 72, 168)
    production = templates["production"]
    assert production["quota"]["requests.cpu"] == "50" and production["quota"]["limits.memory"] == "200Gi"
    assert production["limit_range"] == {"default": {"cpu": "500m", "memory": "512Mi"},
                                         "default_request": {"cpu": "250m", "memory": "256Mi"},
                                         "max": {"cpu": "4", "memory": "8Gi"},
                                         "min": {"cpu": "100m", "memory": "128Mi"}}
    assert production["requires_approval"] is True
    assert production["parameters"]["cpu"] == {"min": "10", "max": "100", "default": "50"}


def test_an_admin_defines_a_template_and_it_is_audited(api, admin, cluster):
    response = api(admin).post("/api/v1/environment-templates", {
        "name": "load-test", "tier": "development", "cluster": "sandbox",
        "quota": {"requests.cpu": "4", "requests.memory": "8Gi"},
        "limit_range": {"default": {"cpu": "500m", "memory": "512Mi"}},
        "network_policy": "default-deny", "ttl_hours": 24, "max_ttl_hours": 48,
        "parameters": {"cpu": {"min": "1", "max": "8"}},
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["cluster"] == "sandbox" and body["parameters"]["cpu"]["default"] == "4"
    event = AuditEvent.objects.get(action="environment_template.create")
    assert event.actor == "ada" and event.outcome == "success"


def test_a_deployer_cannot_define_templates_and_the_refusal_is_audited(api, deployer):
    response = api(deployer).post("/api/v1/environment-templates", {"name": "mine", "tier": "development"})
    assert response.status_code == 403
    assert not EnvironmentTemplate.objects.filter(name="mine").exists()
    assert AuditEvent.objects.filter(action="environment_template.create", outcome="denied", actor="dee").exists()


@pytest.mark.parametrize("payload, message", [
    ({"quota": {"requests.cpu": "lots"}}, "quota.requests.cpu: 'lots' is not a Kubernetes quantity"),
    ({"limit_range": {"min": {"cpu": "2"}, "max": {"cpu": "1"}}}, "limit_range: min.cpu 2 is above max.cpu 1"),
    ({"ttl_hours": 200, "max_ttl_hours": 100}, "ttl_hours: 200 is above max_ttl_hours 100"),
    ({"quota": {"requests.cpu": "16"}, "parameters": {"cpu": {"min": "1", "max": "8"}}},
     "parameters.cpu: the quota's requests.cpu 16 is outside 1..8"),
    ({"network_policy": "allow-all"}, "network_policy"),
])
def test_bad_templates_are_refused_with_the_problem_named(api, admin, payload, message):
    response = api(admin).post("/api/v1/environment-templates", {"name": "bad", "tier": "development", **payload})
    assert response.status_code == 400, response.content
    assert message in str(response.json()["detail"])
    assert not EnvironmentTemplate.objects.filter(name="bad").exists()


def test_an_admin_changes_a_template_and_the_change_is_audited(api, admin):
    response = api(admin).patch("/api/v1/environment-templates/preview", {"max_ttl_hours": 96})
    assert response.status_code == 200, response.content
    assert response.json()["max_ttl_hours"] == 96
    event = AuditEvent.objects.get(action="environment_template.update")
    assert event.changes["max_ttl_hours"] == [168, 96]
