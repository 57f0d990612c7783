"""Container restarts over a window: "4 restarts in 10 min" as the cell's status reason."""
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.monitoring import probing, restarts
from deployments.monitoring.models import CellHealth, HealthChange
from portal import kube
from portal.audit.models import AuditEvent

from .conftest import deploy

pytestmark = pytest.mark.django_db


def cell(env):
    return CellHealth.objects.get(environment=env, service__name="web")


def test_the_sandbox_raises_the_restart_count_of_a_deployments_pods(cluster, sandbox, deployer, staging, web):
    import json
    import urllib.request

    deploy(deployer, staging, "1.0.0")
    request = urllib.request.Request(f"{sandbox.url}/sandbox/restarts", json.dumps({"deployment": "staging/web", "count": 3}).encode(),
                                     {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.load(answer) == {"restarted": ["staging/web"]}
    pods = kube.list_objects(cluster, "v1", "Pod", "staging", "app=web")
    assert kube.pod_restarts(pods) == 3


def test_restarts_within_the_window_degrade_the_cell_with_the_count_as_reason(deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")  # the deploy job's probe: the baseline
    now = timezone.now()
    sandbox.restart_pods("web", 2)
    probing.probe_environments([staging.pk], now=now)
    assert (cell(staging).status, cell(staging).restarts) == ("healthy", 2)  # 2 < GANTRY_RESTARTS_DEGRADE (3)

    sandbox.restart_pods("web", 2)
    probing.probe_environments([staging.pk], now=now + timedelta(minutes=2))
    degraded = cell(staging)
    assert degraded.status == "degraded"
    assert degraded.reason == "4 restarts in 10 min"
    change = HealthChange.objects.filter(environment=staging).order_by("-at", "-id").first()
    assert (change.from_status, change.to_status, change.reason) == ("healthy", "degraded", "4 restarts in 10 min")
    event = AuditEvent.objects.filter(action="health.changed", environment="staging").order_by("-seq").first()
    assert event.changes == {"status": ["healthy", "degraded"]} and event.detail == {"reason": "4 restarts in 10 min"}

    probing.probe_environments([staging.pk], now=now + timedelta(minutes=5))  # no new restart: still 4 in the window
    assert cell(staging).reason == "4 restarts in 10 min"
    probing.probe_environments([staging.pk], now=now + timedelta(minutes=11))  # the first two left the window
    assert (cell(staging).status, cell(staging).reason) == ("healthy", "")
    assert cell(staging).restart_log == [[int((now + timedelta(minutes=2)).timestamp()), 2]]


def test_restarts_from_before_the_first_probe_are_not_recent(deployer, staging, web, sandbox, settings):
    settings.GANTRY_RESTARTS_DEGRADE = 1
    deploy(deployer, staging, "1.0.0")
    CellHealth.objects.filter(environment=staging).delete()  # as if Gantry had never looked at it
    sandbox.restart_pods("web", 5)
    probing.probe_environments([staging.pk])
    assert (cell(staging).status, cell(staging).restarts, cell(staging).restart_log) == ("healthy", 5, [])


def test_a_worse_status_keeps_its_reason_and_adds_the_restarts(deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")
    sandbox.set_fault("web", "fail_probe")
    sandbox.restart_pods("web", 3)
    probing.probe_environments([staging.pk])
    found = cell(staging)
    assert found.status == "degraded"
    assert found.reason.startswith("/health answered HTTP 503") and found.reason.endswith("; 3 restarts in 10 min")


def test_replaced_pods_start_a_new_baseline():
    now = timezone.now()
    seen = restarts.count(7, [], 0, now)  # new pods: the total fell
    assert (seen.total, seen.log, seen.recent) == (0, [], 0)
    seen = restarts.count(seen.total, seen.log, 1, now + timedelta(seconds=15))
    assert (seen.total, seen.recent) == (1, 1)
    assert restarts.count(None, [], 9, now).recent == 0  # no baseline yet
    assert restarts.count(4, [[int(now.timestamp()), 4]], None, now).total == 4  # not read: the baseline stays


def test_restarts_fail_the_verification_of_a_new_release(deployer, staging, web, sandbox):
    from deployments.monitoring import verification as verifying
    from deployments.monitoring.models import Verification

    first = deploy(deployer, staging, "1.0.0")
    v = Verification.objects.get(deployment=first)
    sandbox.restart_pods("web", 4)  # the health path still answers 200 and every replica is ready
    for seconds in (15, 30):
        verifying.evaluate(v.pk, now=v.started_at + timedelta(seconds=seconds))
    v.refresh_from_db()
    assert (v.state, v.consecutive_failures, v.last_probe) == ("running", 2, "4 restarts in 10 min")
    verifying.evaluate(v.pk, now=v.started_at + timedelta(seconds=45))
    v.refresh_from_db()
    assert v.state == "failed" and v.reason.endswith("4 restarts in 10 min")


def test_a_newly_live_deployment_starts_its_own_restart_baseline(deployer, staging, web, sandbox, settings):
    settings.GANTRY_RESTARTS_DEGRADE = 1
    first = deploy(deployer, staging, "1.0.0")
    second = deploy(deployer, staging, "1.1.0")
    sandbox.restart_pods("web", 2)  # the new release's pods restarted (say, while it rolled out)
    # The cell as the last probe before the switch left it: the old release, whose pods never restarted.
    CellHealth.objects.filter(environment=staging).update(deployment=first, restarts=0, restart_log=[])
    probing.probe_environments([staging.pk])
    found = cell(staging)
    assert (found.deployment_id, found.status, found.restarts, found.restart_log) == (second.pk, "healthy", 2, [])
