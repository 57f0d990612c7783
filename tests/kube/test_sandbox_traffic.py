"""The sandbox's simulated traffic: POST /sandbox/traffic sets it, GET /sandbox/metrics serves it to Prometheus."""
import json
import time
import urllib.error
import urllib.request

import pytest
import yaml

from portal.sandbox.resources import DEPLOYMENTS, NAMESPACES

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "web:1"}]}
"""


def call(sandbox, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(sandbox.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def samples(text):
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@pytest.fixture
def web(sandbox):
    sandbox.store.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    sandbox.store.create(DEPLOYMENTS, "shop", yaml.safe_load(DEPLOYMENT))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not sandbox.get("deployments", "web", "shop").get("status", {}).get("readyReplicas"):
        time.sleep(0.05)
    return sandbox


def test_metrics_count_requests_of_ready_deployments(web):
    call(web, "GET", "/sandbox/metrics")
    time.sleep(0.3)
    code, content_type, text = call(web, "GET", "/sandbox/metrics")
    assert code == 200 and content_type.startswith("text/plain")
    values = samples(text)
    ok = values['http_requests_total{namespace="shop",deployment="web",code="200"}']
    assert ok > 0
    assert values['http_requests_total{namespace="shop",deployment="web",code="500"}'] == 0
    assert values['http_request_duration_seconds_bucket{namespace="shop",deployment="web",le="+Inf"}'] == pytest.approx(ok)
    assert "# TYPE http_request_duration_seconds histogram" in text


def test_traffic_sets_the_error_rate_and_latency(web):
    code, _, body = call(web, "POST", "/sandbox/traffic", {"deployment": "web", "error_rate": 0.5, "latency_ms": 3000})
    assert code == 200
    assert json.loads(body)["traffic"] == {"web": {"error_rate": 0.5, "latency_ms": 3000.0}}
    time.sleep(0.3)
    values = samples(call(web, "GET", "/sandbox/metrics")[2])
    ok = values['http_requests_total{namespace="shop",deployment="web",code="200"}']
    errors = values['http_requests_total{namespace="shop",deployment="web",code="500"}']
    assert errors > 0 and errors == pytest.approx(ok)
    # every request took 3 s: none within 2.5 s, all within 5 s
    assert values['http_request_duration_seconds_bucket{namespace="shop",deployment="web",le="2.5"}'] == 0
    assert values['http_request_duration_seconds_bucket{namespace="shop",deployment="web",le="5"}'] == pytest.approx(ok + errors)


@pytest.mark.parametrize("body, message", [
    ({"error_rate": 0.1}, "deployment"),
    ({"deployment": "web", "error_rate": 2}, "error_rate must be a number from 0 to 1"),
    ({"deployment": "web", "latency_ms": "slow"}, "latency_ms"),
    ({"deployment": "web", "speed": 1}, "unknown traffic fields: speed"),
])
def test_bad_traffic_is_refused_and_changes_nothing(sandbox, body, message):
    code, _, text = call(sandbox, "POST", "/sandbox/traffic", body)
    assert code == 400
    assert message in json.loads(text)["message"]
    assert json.loads(call(sandbox, "GET", "/sandbox/traffic")[2]) == {"traffic": {}}


def test_reset_clears_traffic(web):
    call(web, "POST", "/sandbox/traffic", {"deployment": "web*", "error_rate": 1})
    call(web, "POST", "/sandbox/reset")
    assert json.loads(call(web, "GET", "/sandbox/traffic")[2]) == {"traffic": {}}


def test_fail_probe_is_one_of_the_faults(web):
    from portal.sandbox import FAULTS

    assert "fail_probe" in FAULTS
    assert call(web, "POST", "/sandbox/faults", {"deployment": "web", "fault": "fail_probe"})[0] == 200
