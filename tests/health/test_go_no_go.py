"""Go/no-go: an environment may require that a release passed verification in its promotion_from first."""
import pytest
from django.test import Client

from deployments.monitoring import verification as verifying
from deployments.monitoring.config import update_verification
from deployments.monitoring.models import Verification
from portal import kube
from portal.audit.models import AuditEvent

from .conftest import deploy

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(make_env, cluster, staging, admin):
    kube.ensure_namespace(cluster, "prod", {})
    env = make_env("prod", tier="production", cluster=cluster, required_approvals=1, promotion_from=staging)
    update_verification(admin, env, {"require_verified_promotion": True})
    return env


def test_a_release_not_verified_upstream_is_refused(api, deployer, staging, production, web):
    first = deploy(deployer, staging, "1.0.0")  # succeeded in staging, its verification still running
    answer = api(deployer).post("/api/v1/deployments", {"release": first.release_id, "environment": "prod"})
    assert answer.status_code == 409
    assert "passed verification in staging" in answer.json()["detail"] and "running" in answer.json()["detail"]
    assert AuditEvent.objects.filter(action="deployment.request", outcome="denied", environment="prod").exists()


def test_a_release_verified_upstream_may_go_and_the_approval_page_shows_the_figures(api, deployer, viewer, staging, production, web):
    first = deploy(deployer, staging, "1.0.0")
    v = Verification.objects.get(deployment=first)
    verifying.evaluate(v.pk, now=v.ends_at)
    answer = api(deployer).post("/api/v1/deployments", {"release": first.release_id, "environment": "prod"})
    assert answer.status_code == 201, answer.json()
    client = Client()
    client.force_login(viewer)
    panel = client.get(f"/deployments/{answer.json()['id']}/verification/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="go-no-go"' in panel and ">go<" in panel
    assert f"deployment #{first.pk}" in panel and "passed" in panel


def test_without_the_rule_only_success_upstream_counts(api, deployer, admin, staging, production, web):
    update_verification(admin, production, {"require_verified_promotion": False})
    first = deploy(deployer, staging, "1.0.0")
    assert api(deployer).post("/api/v1/deployments", {"release": first.release_id, "environment": "prod"}).status_code == 201
