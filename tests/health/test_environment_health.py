import time

import pytest
import yaml
from django.utils import timezone

from deployments.releases import register_release
from deployments.models import Deployment
from deployments.rendering import render_text
from portal import kube

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(cluster, make_env, make_service, deployer):
    env = make_env("prod", tier="production", cluster=cluster)
    kube.ensure_namespace(cluster, "prod", {})
    make_service("web")
    release = register_release(deployer, {"service": "web", "version": "1.0.0", "image": "web:1.0.0"})
    text = render_text(release.service, release, env)
    deployment = Deployment.objects.create(release=release, environment=env, service=release.service,
                                           state="succeeded", image=release.image, manifest_hash="h",
                                           rendered_manifest=text, finished_at=timezone.now())
    return env, deployment, text


def apply_all(cluster, text, namespace):
    for doc in yaml.safe_load_all(text):
        doc["metadata"]["namespace"] = namespace
        kube.apply(cluster, doc)


def test_a_ready_service_is_healthy(api, viewer, cluster, running):
    env, deployment, text = running
    apply_all(cluster, text, "prod")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not kube.deployment_status(cluster, "prod", "web").get("done"):
        time.sleep(0.05)
    rows = api(viewer).get("/api/v1/environments/prod/health", {"refresh": "true"}).json()
    assert rows[0]["service"] == "web"
    assert rows[0]["status"] == "healthy"
    assert rows[0]["ready_replicas"] == rows[0]["desired_replicas"] == 1
    assert rows[0]["checked_at"]


def test_a_missing_deployment_is_down(api, viewer, running):
    rows = api(viewer).get("/api/v1/environments/prod/health", {"refresh": "true"}).json()
    assert rows[0]["status"] == "down"
    assert "missing" in rows[0]["detail"]


def test_a_failed_rollout_is_reported(api, viewer, cluster, sandbox, running):
    env, deployment, text = running
    sandbox.set_fault("web", "fail_rollout")
    apply_all(cluster, text, "prod")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not kube.deployment_status(cluster, "prod", "web").get("failure"):
        time.sleep(0.05)
    rows = api(viewer).get("/api/v1/environments/prod/health", {"refresh": "true"}).json()
    assert rows[0]["status"] in ("down", "degraded")
    assert "deadline" in rows[0]["detail"]


def test_an_unreachable_cluster_is_unknown(api, viewer, cluster, running):
    cluster.server = "http://127.0.0.1:1"
    cluster.save()
    kube.forget_clients()
    rows = api(viewer).get("/api/v1/environments/prod/health", {"refresh": "true"}).json()
    assert rows[0]["status"] == "unknown"


def test_health_needs_visibility(api, make_user, make_env, running):
    outsider = make_user("x", ("viewer", make_env("dev")))
    assert api(outsider).get("/api/v1/environments/prod/health").status_code == 404
