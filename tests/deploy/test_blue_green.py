"""Blue-green deployments: the idle colour, a health check through its own Service, one flip."""
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import bluegreen, idle_colors, rollout
from deployments.actions import cancel_deployment, request_rollback
from deployments.monitoring.models import CellHealth
from deployments.monitoring.probing import probe_environments
from deployments.live import live_deployment
from portal.audit.models import AuditEvent
from portal.jobs.services import JobFailed

from tests.fixtures_data import WEB_MANIFEST

from .conftest import Log, image, queue_deployment, state_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(make_service):
    return make_service("web", strategy="blue-green", health_path="/health")


def selector(sandbox):
    return sandbox.get("services", "web", "prod")["spec"]["selector"]


def image_of(sandbox, name):
    return sandbox.get("deployments", name, "prod")["spec"]["template"]["spec"]["containers"][0]["image"]


def deploy(deployer, prod, version, log):
    deployment = queue_deployment(deployer, prod, "web", version)
    rollout.execute(deployment.pk, log)
    deployment = state_of(deployment)
    assert deployment.state == "succeeded", deployment.error
    return deployment


def test_the_first_deployment_goes_blue(deployer, prod, web, sandbox, log):
    first = deploy(deployer, prod, "1.0.0", log)
    assert (first.color, first.previous_color) == ("blue", "")
    assert selector(sandbox) == {"app": "web", "color": "blue"}
    blue = sandbox.get("deployments", "web-blue", "prod")
    assert blue["spec"]["selector"]["matchLabels"] == {"app": "web", "color": "blue"}
    assert blue["spec"]["template"]["metadata"]["labels"]["color"] == "blue"
    assert sandbox.get("deployments", "web", "prod") is None  # only the coloured Deployments exist
    assert sandbox.get("services", "web-blue", "prod")["spec"]["selector"] == {"app": "web", "color": "blue"}
    assert "health check GET /health through Service web-blue: HTTP 200" in log.text


def test_the_second_deployment_goes_green_and_flips_only_when_ready(deployer, prod, web, sandbox, log):
    deploy(deployer, prod, "1.0.0", log)
    second = queue_deployment(deployer, prod, "web", "1.1.0")
    seen = []  # (selector colour, green ready replicas) while the job runs
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            green = sandbox.get("deployments", "web-green", "prod")
            seen.append((selector(sandbox)["color"], ((green or {}).get("status") or {}).get("readyReplicas", 0)))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        rollout.execute(second.pk, log)
    finally:
        stop.set()
        watcher.join()
    second = state_of(second)
    assert second.state == "succeeded", second.error
    assert (second.color, second.previous_color) == ("green", "blue")
    assert selector(sandbox)["color"] == "green"
    assert ("blue", 0) in seen  # green was applied while traffic stayed on blue...
    assert all(ready >= 1 for color, ready in seen if color == "green")  # ...and traffic moved only once green was ready
    assert image_of(sandbox, "web-green") == image("web", "1.1.0")
    assert image_of(sandbox, "web-blue") == image("web", "1.0.0")  # the old colour keeps running
    assert sandbox.get("deployments", "web-blue", "prod")["spec"]["replicas"] == 1


def test_a_failing_health_check_leaves_traffic_on_the_old_colour(deployer, prod, web, sandbox, log, monkeypatch):
    monkeypatch.setattr(rollout, "PROBE_INTERVAL_SECONDS", 0.05)
    deploy(deployer, prod, "1.0.0", log)
    sandbox.set_fault("web-green", "fail_probe")
    second = queue_deployment(deployer, prod, "web", "1.1.0")
    with pytest.raises(JobFailed, match="health check failed on web-green"):
        rollout.execute(second.pk, log)
    second = state_of(second)
    assert second.state == "failed"
    assert "traffic stays on blue" in second.error
    assert selector(sandbox)["color"] == "blue"
    assert live_deployment(web.pk, prod.pk).release.version == "1.0.0"


def test_a_health_check_failing_after_the_switch_switches_traffic_back(deployer, prod, web, sandbox, log,
                                                                       monkeypatch):
    monkeypatch.setattr(rollout, "PROBE_INTERVAL_SECONDS", 0.05)
    deploy(deployer, prod, "1.0.0", log)
    real_probe = rollout.kube.probe_service

    def probe(cluster, namespace, service, port, path="/"):
        # The new colour answers through its own Service, but not once it takes the live traffic.
        if service == "web" and selector(sandbox)["color"] == "green":
            return False, "HTTP 503: overloaded"
        return real_probe(cluster, namespace, service, port, path)

    monkeypatch.setattr(rollout.kube, "probe_service", probe)
    second = queue_deployment(deployer, prod, "web", "1.1.0")
    with pytest.raises(JobFailed, match="after the switch to green, so traffic went back to blue"):
        rollout.execute(second.pk, log)
    assert selector(sandbox)["color"] == "blue"
    assert state_of(second).state == "failed"
    assert live_deployment(web.pk, prod.pk).release.version == "1.0.0"
    assert ("error", "traffic switched back: Service web selects color=blue again") in log.lines


def test_a_failed_rollout_of_the_new_colour_leaves_traffic_alone(deployer, prod, web, sandbox, log):
    deploy(deployer, prod, "1.0.0", log)
    sandbox.set_fault("web-green", "fail_rollout")
    second = queue_deployment(deployer, prod, "web", "1.1.0")
    with pytest.raises(JobFailed, match="rollout deadline exceeded"):
        rollout.execute(second.pk, log)
    assert "Deployment web-green in namespace prod" in state_of(second).error
    assert selector(sandbox)["color"] == "blue"

    # The next attempt goes to green again: blue still serves.
    sandbox.set_fault("web-green", "clear")
    third = deploy(deployer, prod, "1.1.1", log)
    assert (third.color, third.previous_color) == ("green", "blue")
    assert selector(sandbox)["color"] == "green"


def test_a_rollback_flips_the_selector_back(deployer, prod, web, sandbox, log):
    deploy(deployer, prod, "1.0.0", log)
    second = deploy(deployer, prod, "1.1.0", log)
    rollback = request_rollback(deployer, second.pk, reason="errors on checkout")
    assert (rollback.color, rollback.previous_color) == ("blue", "green")
    green_version = sandbox.get("deployments", "web-green", "prod")["metadata"]["resourceVersion"]
    rollback_log = Log()
    rollout.execute(rollback.pk, rollback_log)
    rollback = state_of(rollback)
    assert rollback.state == "succeeded", rollback.error
    assert (rollback.color, rollback.previous_color) == ("blue", "green")
    assert selector(sandbox)["color"] == "blue"
    assert state_of(second).state == "rolled_back"
    assert "traffic switched back: Service web now selects color=blue (was green)" in rollback_log.text
    # Nothing was redeployed: the fast path only flips the Service.
    assert not any(message.startswith("applied ") for _, message in rollback_log.lines)
    assert sandbox.get("deployments", "web-green", "prod")["metadata"]["resourceVersion"] == green_version
    assert AuditEvent.objects.filter(action="deployment.rolled_back").exists()


def test_a_rollback_scales_a_scaled_down_colour_back_up(deployer, prod, web, sandbox, log):
    deploy(deployer, prod, "1.0.0", log)
    second = deploy(deployer, prod, "1.1.0", log)
    assert idle_colors.scale_down_idle_colors(now=timezone.now() + timedelta(minutes=31)) == 1
    blue = sandbox.get("deployments", "web-blue", "prod")
    assert blue["spec"]["replicas"] == 0
    assert blue["metadata"]["annotations"][bluegreen.SCALED_FROM_ANNOTATION] == "1"

    rollback = request_rollback(deployer, second.pk)
    rollout.execute(rollback.pk, log)
    assert state_of(rollback).state == "succeeded", state_of(rollback).error
    assert selector(sandbox)["color"] == "blue"
    blue = sandbox.get("deployments", "web-blue", "prod")
    assert blue["spec"]["replicas"] == 1 and blue["status"]["readyReplicas"] == 1
    assert bluegreen.SCALED_FROM_ANNOTATION not in blue["metadata"].get("annotations", {})
    assert "scaled Deployment web-blue back up to 1 replica(s)" in log.text


def test_a_rollback_redeploys_when_the_old_colour_no_longer_runs_the_release(deployer, prod, web, cluster, sandbox, log):
    from portal import kube

    deploy(deployer, prod, "1.0.0", log)
    second = deploy(deployer, prod, "1.1.0", log)
    kube.delete(cluster, "apps/v1", "Deployment", "prod", "web-blue")
    rollback = request_rollback(deployer, second.pk)
    rollout.execute(rollback.pk, log)
    rollback = state_of(rollback)
    assert rollback.state == "succeeded", rollback.error
    assert "Deployment web-blue is gone" in log.text
    assert (rollback.color, rollback.previous_color) == ("blue", "green")
    assert selector(sandbox)["color"] == "blue"
    assert image_of(sandbox, "web-blue") == image("web", "1.0.0")


def test_the_idle_colour_is_scaled_down_only_after_the_keep_time(deployer, prod, web, sandbox, log):
    deploy(deployer, prod, "1.0.0", log)
    assert idle_colors.scale_down_idle_colors() == 0  # no idle colour yet
    second = deploy(deployer, prod, "1.1.0", log)
    assert idle_colors.scale_down_idle_colors() == 0  # within the 30 minutes
    assert sandbox.get("deployments", "web-blue", "prod")["spec"]["replicas"] == 1

    later = timezone.now() + timedelta(minutes=31)
    pending = request_rollback(deployer, second.pk)  # a rollback under way keeps the old colour up
    assert idle_colors.scale_down_idle_colors(now=later) == 0
    cancel_deployment(deployer, pending.pk)
    assert idle_colors.scale_down_idle_colors(now=later) == 1
    assert sandbox.get("deployments", "web-blue", "prod")["spec"]["replicas"] == 0
    assert sandbox.get("deployments", "web-green", "prod")["spec"]["replicas"] == 1
    assert selector(sandbox)["color"] == "green"
    assert idle_colors.scale_down_idle_colors(now=later) == 0  # already down
    assert AuditEvent.objects.filter(action="deployment.idle_color_scaled_down", actor="gantry-scheduler").count() == 1


def test_health_reads_the_live_service_the_manifest_names(deployer, prod, make_service, sandbox, log):
    """A blue-green manifest whose Deployment and Service are not named like the catalog entry:
    it deploys, and the health probe reads the same Service and coloured Deployment the rollout used."""
    manifest = WEB_MANIFEST.replace("name: ${service}", "name: storefront").replace("app: ${service}", "app: storefront")
    make_service("web", strategy="blue-green", health_path="/health", manifest=manifest)
    deploy(deployer, prod, "1.0.0", log)
    assert sandbox.get("services", "storefront", "prod")["spec"]["selector"]["color"] == "blue"
    assert sandbox.get("services", "web", "prod") is None

    probe_environments([prod.pk])
    rows = list(CellHealth.objects.filter(environment=prod))
    assert [(row.service.name, row.status, row.color) for row in rows] == [("web", "healthy", "blue")]
    assert rows[0].ready_replicas == rows[0].desired_replicas == 1

