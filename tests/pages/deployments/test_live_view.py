"""What runs in an environment (the live view)."""
from django.utils import timezone

from deployments.monitoring.models import CellHealth
from tests.pages.conftest import text
from tests.pages.deployments.helpers import HTMX, deployed

# ---------------------------------------------------------------- what runs in an environment

def test_the_environment_page_loads_the_live_view(login, viewer, prod):
    body = text(login(viewer).get("/environments/prod/"))
    assert 'hx-get="/environments/prod/live/" hx-trigger="load" hx-swap="outerHTML"' in body


def test_the_live_view_shows_release_health_and_polls(login, viewer, deployer, prod, web):
    live = deployed(deployer, prod, "1.0.0")
    now = timezone.now()
    CellHealth.objects.create(environment=prod, service=web, status="degraded", ready_replicas=1, desired_replicas=3,
                              checked_at=now, since=now, changed_at=now, reason="1 of 3 replicas ready")
    response = login(viewer).get("/environments/prod/live/", **HTMX)
    body = text(response)
    assert body.startswith('<section id="env-live"') and "<html" not in body
    assert 'hx-get="/environments/prod/live/" hx-trigger="every 1s" hx-swap="outerHTML" data-live-version="' in body
    assert f'<a href="/deployments/{live.pk}/">1.0.0</a>' in body
    assert '<span class="badge health-degraded">degraded</span> 1/3 ready' in body


def test_the_live_view_shows_which_colour_runs_which_release(login, viewer, deployer, prod, make_service):
    make_service("web", strategy="blue-green")
    deployed(deployer, prod, "1.0.0", minutes_ago=60, color="blue")
    deployed(deployer, prod, "1.1.0", minutes_ago=5, color="green")
    body = text(login(viewer).get("/environments/prod/live/", **HTMX))
    assert 'live: <span class="badge color-green">green</span>' in body
    assert '<span class="badge color-blue">blue</span> 1.0.0 <span class="muted">idle</span>' in body
    assert '<span class="badge color-green">green</span> 1.1.0 <strong>live</strong>' in body


def test_the_live_view_offers_rollback_when_there_is_a_target(login, deployer, prod, web, make_service):
    make_service("api")
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    only = deployed(deployer, prod, "2.0.0", service="api")
    body = text(login(deployer).get("/environments/prod/live/", **HTMX))
    assert f'action="/deployments/{live.pk}/rollback"' in body and "Roll back to 1.0.0" in body
    assert f'action="/deployments/{only.pk}/rollback"' not in body


def test_the_live_view_is_a_page_without_htmx(login, viewer, prod):
    body = text(login(viewer).get("/environments/prod/live/"))
    assert "<html" in body and "Nothing has been deployed to Prod yet" in body
