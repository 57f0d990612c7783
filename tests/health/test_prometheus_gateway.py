"""portal.prometheus against a real Prometheus scraping the sandbox."""

import pytest

from portal import prometheus
from portal.throwaway import free_port

from .conftest import wait_until


def test_a_query_returns_one_number(prometheus_server):
    value = wait_until(lambda: prometheus.query(prometheus_server.url, 'sum(up{job="sandbox"})'))
    assert value == 1.0


def test_a_query_without_data_returns_none(prometheus_server):
    assert prometheus.query(prometheus_server.url, 'sum(http_requests_total{deployment="nothing-here"})') is None


def test_a_query_with_several_series_asks_for_an_aggregation(prometheus_server):
    with pytest.raises(prometheus.PrometheusError) as caught:
        prometheus.query(prometheus_server.url, 'vector(1) or label_replace(vector(2), "a", "b", "", "")')
    assert "aggregate it to one number" in caught.value.message
    assert not caught.value.unreachable


def test_a_refused_expression_comes_back_with_prometheus_own_message(prometheus_server):
    message = prometheus.check_expression(prometheus_server.url, "sum(rate(http_requests_total[1m]")
    assert message and "parse error" in message
    assert prometheus.check_expression(prometheus_server.url, "sum(rate(http_requests_total[1m]))") is None


def test_an_unreachable_prometheus_says_so():
    port = free_port()  # nothing listens there
    with pytest.raises(prometheus.PrometheusError) as caught:
        prometheus.query(f"http://127.0.0.1:{port}", "vector(1)", timeout=1)
    assert caught.value.unreachable
    assert "could not be reached" in caught.value.message


def test_prometheus_sees_the_error_rate_the_sandbox_is_told(sandbox, prometheus_server):
    from portal.sandbox.resources import DEPLOYMENTS, NAMESPACES

    sandbox.store.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    sandbox.store.create(DEPLOYMENTS, "shop", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}})
    sandbox.set_traffic("web", error_rate=0.25)
    expression = ('sum(rate(http_requests_total{namespace="shop",deployment="web",code=~"5.."}[5s]))'
                  ' / sum(rate(http_requests_total{namespace="shop",deployment="web"}[5s]))')
    value = wait_until(lambda: prometheus.query(prometheus_server.url, expression))
    assert value == pytest.approx(0.25, abs=0.02)
