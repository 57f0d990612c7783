"""The API takes JSON as it is: no `true` as a release id, no "yes" as a boolean, capped lists
(issue #7, item 8)."""
import pytest

from deployments.models import Deployment
from deployments.releases import register_release
from environments.models import Environment

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(deployer, make_env, make_service):
    make_env("dev")
    make_service("web")
    return register_release(deployer, {"service": "web", "version": "1.0.0",
                                                  "image": "registry.example.com/web:1.0.0"})


@pytest.mark.parametrize("body", [{"release": True}, {"release": "1"}, {"release": 1.0}, {"release": 0},
                                  {"release": 2**64}, {"start_now": "yes"}, {"start_now": 1}, {"start_now": "true"}])
def test_a_deployment_request_takes_only_real_ids_and_booleans(api, deployer, release, body):
    data = {"release": release.pk, "environment": "dev"} | body
    response = api(deployer).post("/api/v1/deployments", data)
    assert response.status_code == 400, response.content
    assert "detail" in response.json()
    assert not Deployment.objects.exists()


def test_a_real_request_still_works(api, deployer, release):
    response = api(deployer).post("/api/v1/deployments", {"release": release.pk, "environment": "dev",
                                                          "start_now": False})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("body", [{"replicas": True}, {"replicas": "3"}, {"prevent_self_approval": "yes"},
                                  {"prevent_self_approval": 1}, {"required_approvals": True},
                                  {"required_approvals": 11}, {"rollback_requires_approval": "no"},
                                  {"checklist": ["x"] * 51}, {"approver_groups": ["a" * 201]},
                                  {"deployment_windows": [{"days": ["mon"], "start": "09:00", "end": "17:00",
                                                           "timezone": "UTC"}] * 20000}])
def test_environment_settings_are_strict_and_capped(api, admin, make_env, body):
    make_env("prod", tier="production", required_approvals=2)
    response = api(admin).patch("/api/v1/environments/prod", body)
    assert response.status_code == 400, response.content[:300]
    env = Environment.objects.get(slug="prod")
    assert env.required_approvals == 2 and env.deployment_windows == [] and env.checklist == []


def test_ordinary_environment_settings_still_work(api, admin, make_env):
    make_env("prod", tier="production")
    response = api(admin).patch("/api/v1/environments/prod", {"replicas": 3, "prevent_self_approval": True,
                                                              "required_approvals": 2, "checklist": ["tests green"]})
    assert response.status_code == 200, response.content
    assert response.json()["required_approvals"] == 2


@pytest.mark.parametrize("body", [{"insecure": "yes"}, {"in_cluster": 1}])
def test_cluster_flags_are_real_booleans(api, admin, body):
    response = api(admin).post("/api/v1/clusters", {"name": "c1", "server": "https://10.0.0.1:6443"} | body)
    assert response.status_code == 400, response.content


@pytest.mark.django_db(transaction=True, reset_sequences=True)
@pytest.mark.parametrize("value", [True, "1"])
def test_true_or_a_string_is_not_release_number_one(api, deployer, release, value):
    assert release.pk == 1
    response = api(deployer).post("/api/v1/deployments", {"release": value, "environment": "dev"})
    assert response.status_code == 400, response.content
    assert not Deployment.objects.exists()
