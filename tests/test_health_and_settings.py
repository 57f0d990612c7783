import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_healthz_answers_without_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_when_database_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_down(client, settings):
    import django_rq.queues

    settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in settings.RQ_QUEUES}
    django_rq.queues.get_redis_connection.cache_clear() if hasattr(django_rq.queues.get_redis_connection, "cache_clear") else None
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert "redis" in body["failing"] and "database" not in body["failing"]
    assert "redis" in body["detail"]


@pytest.mark.django_db
def test_readyz_for_the_web_needs_only_the_database_and_still_names_redis(client, settings):
    settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in settings.RQ_QUEUES}
    response = client.get("/readyz?need=database")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["checks"] == {"database": "ok", "redis": "down"}
    assert "redis" in body["failing"]
    assert client.get("/readyz?need=database,redis").status_code == 503


@pytest.mark.django_db
def test_metrics_are_prometheus_text(client, make_env, viewer):
    from tests.conftest import token_for

    make_env("dev")
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total" in text or "django_http_requests_before_middlewares_total" in text
    assert 'gantry_environments{status="ready",tier="development"} 1.0' in text


def test_pages_carry_a_strict_content_security_policy(client):
    csp = client.get("/healthz")["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_check_deploy_is_clean_with_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE", "GANTRY_TESTING", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update({"SECRET_KEY": "x" * 20 + "-production-key-with-enough-length-and-variety-1234567890",
                "ALLOWED_HOSTS": "gantry.example.com", "DJANGO_SETTINGS_MODULE": "portal.settings"})
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_is_required_without_debug():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "GANTRY_TESTING")}
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_the_models_and_migrations_agree():
    result = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], cwd=ROOT,
                            env=dict(os.environ, DEBUG="1", DJANGO_SETTINGS_MODULE="portal.settings",
                                     DATABASE_URL="sqlite:///:memory:"),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
