"""GET /api/v1/health, the history of a cell, and PATCH environment `verification`."""
import pytest

from deployments.monitoring import probing
from portal.audit.models import AuditEvent

from .conftest import deploy

pytestmark = pytest.mark.django_db


def test_health_lists_every_visible_cell(api, viewer, deployer, staging, web):
    deploy(deployer, staging, "1.0.0")
    rows = api(viewer).get("/api/v1/health").json()
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in ("environment", "service", "release", "status", "reason")} == {
        "environment": "staging", "service": "web", "release": "1.0.0", "status": "healthy", "reason": ""}
    assert row["since"] and row["checked_at"] and "color" in row


def test_health_filters_and_refuses_an_unknown_status(api, viewer, deployer, staging, web):
    deploy(deployer, staging, "1.0.0")
    assert api(viewer).get("/api/v1/health", {"status": "down"}).json() == []
    assert len(api(viewer).get("/api/v1/health", {"environment": "staging", "service": "web"}).json()) == 1
    answer = api(viewer).get("/api/v1/health", {"status": "sad"})
    assert answer.status_code == 400 and "healthy" in answer.json()["detail"]


def test_health_shows_only_environments_the_caller_may_see(api, make_user, deployer, staging, web, make_env):
    deploy(deployer, staging, "1.0.0")
    other = make_env("other")
    scoped = make_user("sam", ("viewer", other))
    assert api(scoped).get("/api/v1/health").json() == []
    assert api().get("/api/v1/health").status_code == 401


def test_history_has_checks_changes_and_availability(api, viewer, deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")
    sandbox.set_fault("web", "fail_probe")
    probing.probe_environments([staging.pk])
    body = api(viewer).get("/api/v1/environments/staging/services/web/health/history").json()
    assert [c["status"] for c in body["checks"]] == ["healthy", "degraded"]
    assert body["checks"][0]["latency_ms"] is not None
    assert [(c["from"], c["to"]) for c in body["changes"]] == [("healthy", "degraded"), ("unknown", "healthy")]
    assert "/health answered HTTP 503" in body["changes"][0]["reason"]
    assert body["availability"] == {"24h": 50.0, "7d": 50.0}


def test_history_of_unknown_things_is_404_and_bad_hours_400(api, viewer, staging, web):
    assert api(viewer).get("/api/v1/environments/nope/services/web/health/history").status_code == 404
    assert api(viewer).get("/api/v1/environments/staging/services/nope/health/history").status_code == 404
    assert api(viewer).get("/api/v1/environments/staging/services/web/health/history", {"hours": 0}).status_code == 400


def test_environment_shows_its_verification_defaults(api, viewer, staging, make_env):
    body = api(viewer).get("/api/v1/environments/staging").json()["verification"]
    assert body["window_seconds"] == 300 and body["probe_interval_seconds"] == 15 and body["failure_threshold"] == 3
    assert body["auto_rollback"] is True and body["prometheus_url"] is None
    assert [r["name"] for r in body["rules"]] == ["error rate", "p95 latency", "cpu", "memory"]
    assert {(r["op"], r["threshold"], r["for_seconds"]) for r in body["rules"]} == {
        (">", 0.05, 300), (">", 2.0, 180), (">", 0.9, 300), (">", 0.95, 180)}
    make_env("dev-1", tier="development")
    assert api(viewer).get("/api/v1/environments/dev-1").json()["verification"]["auto_rollback"] is False


def test_an_admin_sets_verification_and_it_is_audited(api, admin, staging, prometheus_server):
    answer = api(admin).patch("/api/v1/environments/staging", {"verification": {
        "window_seconds": 60, "failure_threshold": 2, "prometheus_url": prometheus_server.url}})
    assert answer.status_code == 200, answer.json()
    body = answer.json()["verification"]
    assert (body["window_seconds"], body["failure_threshold"], body["prometheus_url"]) == (60, 2, prometheus_server.url)
    event = AuditEvent.objects.get(action="environment.verification_update")
    assert event.changes["window_seconds"] == [300, 60]


def test_a_query_prometheus_refuses_comes_back_with_its_message_and_changes_nothing(api, admin, staging, prometheus_server):
    answer = api(admin).patch("/api/v1/environments/staging", {"name": "Renamed", "verification": {
        "prometheus_url": prometheus_server.url,
        "rules": [{"name": "broken", "query": "sum(rate(http_requests_total[1m]", "op": ">", "threshold": 1, "for_seconds": 0}]}})
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert "Prometheus refused it" in detail and "parse error" in detail
    body = api(admin).get("/api/v1/environments/staging").json()
    assert body["name"] != "Renamed" and body["verification"]["prometheus_url"] is None


@pytest.mark.parametrize("verification, message", [
    ({"window_seconds": 0}, "window_seconds"),
    ({"prometheus_url": "ftp://x"}, "prometheus_url"),
    ({"rules": [{"name": "r", "query": "up", "op": "=", "threshold": 1}]}, "op"),
    ({"rules": [{"name": "r", "query": "up{x=\"${pod}\"}", "op": ">", "threshold": 1}]}, "unknown placeholder pod"),
    ({"unknown_rule": "maybe"}, "unknown_rule"),
    ({"speed": 1}, "unknown fields speed"),
])
def test_bad_verification_is_refused(api, admin, staging, verification, message):
    answer = api(admin).patch("/api/v1/environments/staging", {"verification": verification})
    assert answer.status_code == 400
    assert message in str(answer.json()["detail"])


def test_only_an_admin_changes_verification(api, deployer, staging):
    answer = api(deployer).patch("/api/v1/environments/staging", {"verification": {"auto_rollback": False}})
    assert answer.status_code == 403
    assert AuditEvent.objects.filter(action="environment.verification_update", outcome="denied").exists()


def test_an_unreachable_prometheus_is_refused_when_rules_are_saved(api, admin, staging):
    answer = api(admin).patch("/api/v1/environments/staging", {"verification": {"prometheus_url": "http://127.0.0.1:9"}})
    assert answer.status_code == 400
    assert "could not be reached" in answer.json()["detail"][0]
