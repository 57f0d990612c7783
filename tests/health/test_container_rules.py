"""The seeded CPU and memory rules read cAdvisor's and kube-state-metrics' names, which the sandbox
serves like a real cluster: a real Prometheus scrapes it, and the verification sees the values."""
from datetime import timedelta

import pytest

from deployments.monitoring import verification as verifying
from deployments.monitoring.config import update_verification
from deployments.monitoring.models import Verification, default_rules
from portal import prometheus

from .conftest import deploy, wait_until

pytestmark = pytest.mark.django_db


def near(value, expected):
    return value is not None and abs(value - expected) < 0.02


def test_the_sandbox_serves_container_usage_and_limits_under_their_standard_names(sandbox, deployer, staging, web):
    deploy(deployer, staging, "1.0.0")
    text = sandbox.metrics()
    pod = next(p["metadata"]["name"] for p in sandbox.list("pods", "staging"))
    labels = f'namespace="staging",pod="{pod}",container="web"'
    assert f"container_cpu_usage_seconds_total{{{labels}}} " in text
    assert f"container_memory_working_set_bytes{{{labels}}} " in text
    assert f'kube_pod_container_resource_limits{{{labels},resource="cpu",unit="core"}} ' in text
    assert f'kube_pod_container_resource_limits{{{labels},resource="memory",unit="byte"}} ' in text
    assert "usage_ratio" not in text


def test_the_seeded_cpu_and_memory_rules_measure_use_against_limits(admin, deployer, staging, web, sandbox, prometheus_server):
    # The seeded rules, saved (so Prometheus is asked about each query and accepts it), with a 5 s rate
    # window instead of 1 min: rate() over a minute needs a minute of samples to reach the true value.
    rules = [{**rule, "query": rule["query"].replace("[1m]", "[5s]")} for rule in default_rules()]
    update_verification(admin, staging, {"prometheus_url": prometheus_server.url, "rules": rules})
    sandbox.set_traffic("web", cpu=0.95, memory=0.5)
    first = deploy(deployer, staging, "1.0.0")
    v = Verification.objects.get(deployment=first)
    queries = {rule["name"]: rule["query"] for rule in v.rules}
    assert 'pod=~"web-[a-z0-9]+-[a-z0-9]+"' in queries["cpu"] and "rate(container_cpu_usage_seconds_total" in queries["cpu"]
    assert "container_memory_working_set_bytes" in queries["memory"]
    assert wait_until(lambda: near(prometheus.query(prometheus_server.url, queries["cpu"]), 0.95))
    assert wait_until(lambda: near(prometheus.query(prometheus_server.url, queries["memory"]), 0.5))

    verifying.evaluate(v.pk, now=v.started_at + timedelta(seconds=1))
    rules = {rule["name"]: rule for rule in Verification.objects.get(pk=v.pk).rules}
    assert rules["cpu"]["state"] == "breaching" and near(rules["cpu"]["value"], 0.95)  # above 0.9, not yet for 5 minutes
    assert rules["memory"]["state"] == "ok" and near(rules["memory"]["value"], 0.5)
