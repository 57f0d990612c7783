"""Verification after each deployment, and the automatic rollback it triggers (real sandbox, real Prometheus).

Gantry's clock is passed in (``now``): a window of minutes is walked through in a few calls, while
the metrics come from a real Prometheus scraping the sandbox every second.
"""
from datetime import timedelta

import pytest

from deployments import actions
from deployments.models import Deployment
from deployments.monitoring import verification as verifying
from deployments.monitoring.config import update_verification
from deployments.monitoring.models import AutoRollback, Verification
from portal import prometheus
from portal.audit.models import AuditEvent

from .conftest import deploy, run_rollback_job, wait_until

pytestmark = pytest.mark.django_db

ERROR_RATE = ('sum(rate(http_requests_total{namespace="${namespace}",deployment="${deployment}",code=~"5.."}[5s]))'
              ' / sum(rate(http_requests_total{namespace="${namespace}",deployment="${deployment}"}[5s]))')


def verification_of(deployment):
    return Verification.objects.get(deployment_id=deployment.pk)


def step(deployment, seconds):
    """One verification step at `seconds` after the window opened."""
    v = verification_of(deployment)
    verifying.evaluate(v.pk, now=v.started_at + timedelta(seconds=seconds))
    return verification_of(deployment)


def passed(deployment):
    v = verification_of(deployment)
    verifying.evaluate(v.pk, now=v.ends_at)
    v = verification_of(deployment)
    assert v.state == "passed", v.reason
    return v


def image_in_cluster(sandbox, name="web", namespace="staging"):
    return sandbox.get("deployments", name, namespace)["spec"]["template"]["spec"]["containers"][0]["image"]


def test_a_healthy_release_passes_at_the_end_of_its_window(deployer, staging, web, api, viewer):
    first = deploy(deployer, staging, "1.0.0")
    v = step(first, 0)
    assert (v.state, v.probes, v.consecutive_failures) == ("running", 1, 0)
    v = passed(first)
    assert "no metric rules" in v.reason
    body = api(viewer).get(f"/api/v1/deployments/{first.pk}").json()
    assert body["verification"]["state"] == "passed"
    assert body["verification"]["finished_at"]
    assert body["rolled_back_by"] is None and body["auto"] is False
    assert AuditEvent.objects.filter(action="deployment.verification_passed", target_id=str(first.pk)).exists()


def test_three_failed_probes_roll_back_to_the_last_verified_release(deployer, staging, web, sandbox, api, viewer):
    first = deploy(deployer, staging, "1.0.0")
    passed(first)
    second = deploy(deployer, staging, "2.0.0")
    sandbox.set_fault("web", "fail_probe")
    assert step(second, 0).state == "running"
    assert step(second, 15).state == "running"  # two failures: not yet
    assert not Deployment.objects.filter(rollback_of=second).exists()
    v = step(second, 30)
    assert v.state == "failed"
    assert "/health answered HTTP 503" in v.reason and "3 times in a row" in v.reason
    rollback = Deployment.objects.get(rollback_of=second)
    assert rollback.kind == "rollback" and rollback.release.version == "1.0.0" and rollback.requested_by is None
    sandbox.set_fault("web", "clear")
    rollback = run_rollback_job(rollback)
    assert rollback.state == "succeeded"
    assert image_in_cluster(sandbox).endswith(first.image.split("/")[-1])  # traffic is back on 1.0.0
    second = Deployment.objects.get(pk=second.pk)
    assert second.state == "rolled_back"
    body = api(viewer).get(f"/api/v1/deployments/{second.pk}").json()
    assert (body["state"], body["rolled_back_by"], body["auto"]) == ("rolled_back", rollback.pk, True)
    assert "verification failed" in body["auto_rollback"]["reason"]
    assert api(viewer).get(f"/api/v1/deployments/{rollback.pk}").json()["auto"] is True
    assert AuditEvent.objects.filter(action="deployment.rollback_request", actor="gantry", target_id=str(rollback.pk)).exists()


def test_two_failed_probes_then_recovery_pass(deployer, staging, web, sandbox):
    first = deploy(deployer, staging, "1.0.0")
    sandbox.set_fault("web", "fail_probe")
    step(first, 0)
    step(first, 15)
    sandbox.set_fault("web", "clear")
    assert step(first, 30).consecutive_failures == 0
    passed(first)
    assert not Deployment.objects.filter(rollback_of=first).exists()


def test_without_a_verified_release_gantry_alerts_and_leaves_traffic_alone(deployer, staging, web, sandbox):
    first = deploy(deployer, staging, "1.0.0")  # never passed verification (its window was cut short)
    Verification.objects.filter(deployment=first).update(state="failed", reason="test: failed")
    second = deploy(deployer, staging, "2.0.0")
    sandbox.set_fault("web", "fail_probe")
    for seconds in (0, 15, 30):
        v = step(second, seconds)
    assert v.state == "failed"
    assert not Deployment.objects.filter(rollback_of=second).exists()
    assert AutoRollback.objects.get(deployment=second).outcome == "no_target"
    assert Deployment.objects.get(pk=second.pk).state == "succeeded"
    assert ":2.0.0@" in image_in_cluster(sandbox)  # traffic stays on 2.0.0
    event = AuditEvent.objects.get(action="deployment.auto_rollback_refused", target_id=str(second.pk))
    assert "traffic left alone" in event.detail["why"]


def test_a_rollback_that_fails_verification_is_not_rolled_back_again(deployer, staging, web, sandbox):
    first = deploy(deployer, staging, "1.0.0")
    passed(first)
    second = deploy(deployer, staging, "2.0.0")
    sandbox.set_fault("web", "fail_probe")
    for seconds in (0, 15, 30):
        step(second, seconds)
    rollback = run_rollback_job(Deployment.objects.get(rollback_of=second))
    verifying.start_verification(rollback)
    for seconds in (0, 15, 30):  # the fault stays: the rollback fails its verification too
        v = step(rollback, seconds)
    assert v.state == "failed"
    assert Deployment.objects.filter(kind="rollback").count() == 1  # no loop
    assert AuditEvent.objects.filter(action="deployment.auto_rollback_refused", target_id=str(rollback.pk)).exists()
    assert AutoRollback.objects.count() == 1


def test_a_persons_rollback_during_verification_cancels_the_automatic_one(deployer, staging, web, sandbox):
    first = deploy(deployer, staging, "1.0.0")
    passed(first)
    second = deploy(deployer, staging, "2.0.0")
    sandbox.set_fault("web", "fail_probe")
    step(second, 0)
    by_hand = actions.request_rollback(deployer, second.pk, reason="looks wrong")
    v = step(second, 15)
    assert v.state == "skipped"
    assert "dee rolled it back" in v.reason
    from deployments.monitoring.rollback import auto_rollback

    assert auto_rollback(second.pk, "late").outcome == "superseded"
    assert list(Deployment.objects.filter(rollback_of=second).values_list("pk", flat=True)) == [by_hand.pk]


def test_blue_green_rolls_back_by_flipping_the_selector(deployer, staging, make_service, sandbox):
    make_service("web", strategy="blue-green")
    first = deploy(deployer, staging, "1.0.0")
    passed(first)
    second = deploy(deployer, staging, "2.0.0")
    assert sandbox.get("services", "web", "staging")["spec"]["selector"]["color"] == "green"
    sandbox.set_fault("web-green", "fail_probe")
    for seconds in (0, 15, 30):
        v = step(second, seconds)
    assert v.state == "failed"
    run_rollback_job(Deployment.objects.get(rollback_of=second))
    assert sandbox.get("services", "web", "staging")["spec"]["selector"]["color"] == "blue"
    assert Deployment.objects.get(pk=second.pk).state == "rolled_back"


# --- metric rules, with a real Prometheus ---------------------------------------------------------


@pytest.fixture
def with_rules(admin, staging, prometheus_server):
    def configure(**extra):
        rules = [{"name": "error rate", "query": ERROR_RATE, "op": ">", "threshold": 0.05, "for_seconds": 4}]
        update_verification(admin, staging, {"prometheus_url": prometheus_server.url, "rules": rules, **extra})
    return configure


def test_the_error_rate_rule_fails_after_its_duration_and_not_before(deployer, staging, web, sandbox, with_rules, prometheus_server):
    with_rules()
    first = deploy(deployer, staging, "1.0.0")
    v = verification_of(first)
    query = v.rules[0]["query"]
    assert 'deployment="web"' in query and 'namespace="staging"' in query
    assert wait_until(lambda: prometheus.query(prometheus_server.url, query) == 0.0)
    passed(first)
    second = deploy(deployer, staging, "2.0.0")
    sandbox.set_traffic("web", error_rate=0.5)
    assert wait_until(lambda: (prometheus.query(prometheus_server.url, query) or 0) > 0.05)
    v = step(second, 1)
    assert (v.state, v.rules[0]["state"]) == ("running", "breaching")
    assert v.rules[0]["value"] > 0.05
    v = step(second, 4)  # 3 s above the threshold: not yet
    assert v.state == "running"
    assert not Deployment.objects.filter(rollback_of=second).exists()
    v = step(second, 5)  # 4 s: the rule holds for its duration
    assert v.state == "failed"
    assert "error rate was" in v.reason and "limit 4 s" in v.reason
    assert Deployment.objects.get(rollback_of=second).release.version == "1.0.0"


def test_a_short_spike_does_not_fail_the_rule(deployer, staging, web, sandbox, with_rules, prometheus_server):
    with_rules()
    first = deploy(deployer, staging, "1.0.0")
    query = verification_of(first).rules[0]["query"]
    sandbox.set_traffic("web", error_rate=0.5)
    assert wait_until(lambda: (prometheus.query(prometheus_server.url, query) or 0) > 0.05)
    assert step(first, 1).rules[0]["state"] == "breaching"
    sandbox.set_traffic("web", error_rate=0.0)
    assert wait_until(lambda: prometheus.query(prometheus_server.url, query) == 0.0, timeout=20)
    v = step(first, 10)
    assert v.rules[0]["state"] == "ok" and v.rules[0]["since"] is None
    passed(first)


@pytest.mark.parametrize("setting, outcome", [("fail", "failed"), ("ignore", "passed")])
def test_an_unreachable_prometheus_makes_rules_unknown_and_the_setting_decides(
        deployer, staging, web, admin, prometheus_server, setting, outcome):
    rules = [{"name": "error rate", "query": ERROR_RATE, "op": ">", "threshold": 0.05, "for_seconds": 4}]
    update_verification(admin, staging, {"prometheus_url": prometheus_server.url, "rules": rules, "unknown_rule": setting,
                                         "auto_rollback": False})
    prometheus_server.stop()  # Prometheus goes down after the rules were saved
    first = deploy(deployer, staging, "1.0.0")
    v = step(first, 0)
    assert v.rules[0]["state"] == "unknown"
    assert "could not be reached" in v.rules[0]["detail"]
    verifying.evaluate(v.pk, now=v.ends_at)
    v = verification_of(first)
    assert v.state == outcome
    assert "could not be evaluated" in v.reason or "ignored (could not be evaluated)" in v.reason
    assert "could not be reached" in v.reason
