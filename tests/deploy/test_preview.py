"""The approval page's dry run: what would be created or changed, as a diff against the cluster."""
import pytest

from deployments import rollout
from deployments.preview import preview
from deployments.models import Deployment, Service

from .conftest import Log, image, queue_deployment

pytestmark = pytest.mark.django_db


def actions(result):
    return [(o["kind"], o["name"], o["action"]) for o in result["objects"]]


def test_a_first_deployment_creates_everything(deployer, prod, make_service, sandbox):
    make_service("web")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    result = preview(deployment)
    assert result["ok"] and result["problems"] == []
    assert actions(result) == [("Deployment", "web", "create"), ("Service", "web", "create")]
    diff = result["objects"][0]["diff"]
    assert diff[:2] == ["--- /dev/null", "+++ desired Deployment/web"]
    assert f"+        image: {image('web', '1.0.0')}" in diff
    assert not any("managedFields" in line or "resourceVersion" in line or "uid:" in line for line in diff)
    assert sandbox.get("deployments", "web", "prod") is None  # a dry run changes nothing


def test_a_new_release_updates_only_the_deployment(deployer, prod, make_service, sandbox):
    make_service("web")
    rollout.execute(queue_deployment(deployer, prod, "web", "1.0.0").pk, Log())
    again = preview(queue_deployment(deployer, prod, "web", "1.0.0"))
    assert actions(again) == [("Deployment", "web", "unchanged"), ("Service", "web", "unchanged")]
    assert all(o["diff"] == [] for o in again["objects"])

    result = preview(queue_deployment(deployer, prod, "web", "1.1.0"))
    assert actions(result) == [("Deployment", "web", "update"), ("Service", "web", "unchanged")]
    changed = [line for line in result["objects"][0]["diff"] if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == [f"-        image: {image('web', '1.0.0')}", f"+        image: {image('web', '1.1.0')}"]
    live = sandbox.get("deployments", "web", "prod")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == image("web", "1.0.0")


def test_a_blue_green_deployment_shows_the_idle_colour_and_the_flip(deployer, prod, make_service, sandbox):
    make_service("web", strategy="blue-green")
    rollout.execute(queue_deployment(deployer, prod, "web", "1.0.0").pk, Log())
    result = preview(queue_deployment(deployer, prod, "web", "1.1.0"))
    assert result["ok"], result["problems"]
    assert actions(result) == [("Deployment", "web-green", "create"), ("Service", "web-green", "create"),
                               ("Service", "web", "update")]
    flip = [line for line in result["objects"][2]["diff"] if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert flip == ["-    color: blue", "+    color: green"]


def test_cluster_errors_become_problems(deployer, prod, make_service, sandbox):
    make_service("web")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    sandbox.stop()
    result = preview(deployment)
    assert result["ok"] is False
    assert result["objects"] == []
    assert any("cannot reach the cluster" in problem for problem in result["problems"])


def test_a_missing_namespace_is_a_problem(deployer, make_env, cluster, make_service, sandbox):
    make_service("web")
    env = make_env("staging", tier="staging", cluster=cluster)  # its namespace was never created
    result = preview(queue_deployment(deployer, env, "web", "1.0.0"))
    assert result["ok"] is False
    assert any('namespaces "staging" not found' in problem for problem in result["problems"])


def test_manifest_problems_become_problems(deployer, prod, make_service, web_manifest, sandbox):
    service = make_service("web")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    Service.objects.filter(pk=service.pk).update(manifest=web_manifest.replace("replicas: ${replicas}", "replicas: many"))
    result = preview(Deployment.objects.get(pk=deployment.pk))
    assert result["ok"] is False and result["objects"] == []
    assert result["problems"] == ["document 1, line 8, spec.replicas: 'many' is not of type 'integer'"]
