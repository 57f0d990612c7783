"""Requesting a deployment through the form."""
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from deployments.models import Deployment
from deployments.releases import register_release
from tests.pages.conftest import events, text
from tests.pages.deployments.helpers import image, release_of

# ---------------------------------------------------------------- requesting a deployment

def test_the_request_form_lists_releases_and_the_deployers_environments(login, make_user, make_env, deployer, web):
    dev, prod = make_env("dev"), make_env("prod", tier="production")
    release_of(deployer, "1.0.0")
    dana = make_user("dana", ("deployer", dev), ("viewer", prod))
    body = text(login(dana).get("/deployments/new/?service=web"))
    assert '<option value="dev"' in body and '<option value="prod"' not in body
    assert "1.0.0 · " + image("1.0.0") in body
    assert "Break the glass" not in body


def test_the_request_form_offers_break_glass_to_admins(login, admin, prod, web):
    release_of(admin, "1.0.0")
    assert "Break the glass" in text(login(admin).get("/deployments/new/?service=web"))


def test_it_requests_a_deployment_and_shows_its_page(login, deployer, prod, web):
    release = release_of(deployer, "1.0.0")
    response = login(deployer).post("/deployments/new/", {"service": "web", "release": release.pk,
                                                          "environment": "prod"}, follow=True)
    deployment = Deployment.objects.get()
    assert response.redirect_chain[-1][0] == f"/deployments/{deployment.pk}/"
    assert deployment.state == "pending_approval" and deployment.requested_by == deployer
    assert f"Deployment #{deployment.pk} of web 1.0.0 to prod requested" in text(response)


def test_the_request_form_refuses_during_a_freeze_with_its_message(login, deployer, make_env, web):
    make_env("prod", tier="production", freeze_until=timezone.now() + timedelta(days=2),
             freeze_reason="Black Friday: no changes")
    release = release_of(deployer, "1.0.0")
    response = login(deployer).post("/deployments/new/", {"service": "web", "release": release.pk,
                                                          "environment": "prod"})
    assert response.status_code == 409
    assert "prod is frozen until" in text(response) and "Black Friday: no changes" in text(response)
    assert not Deployment.objects.exists()
    assert events("deployment.request", "denied", actor="dee").exists()


def test_the_request_form_refuses_start_now_when_the_window_is_closed(login, deployer, make_env, web, clock):
    mondays = [{"days": ["mon"], "start": "09:00", "end": "17:00", "timezone": "UTC"}]
    make_env("prod", tier="production", deployment_windows=mondays)
    release = release_of(deployer, "1.0.0")
    client = login(deployer)
    clock.set(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))  # a Tuesday
    response = client.post("/deployments/new/", {"service": "web", "release": release.pk,
                                                 "environment": "prod", "start_now": "1"})
    assert response.status_code == 409
    assert "the deployment window of prod is closed; the next window opens Mon 2026-11-30 09:00 UTC" in text(response)


def test_the_request_form_shows_input_errors(login, deployer, make_env, web):
    make_env("prod", tier="production")
    release = register_release(deployer, {"service": "web", "version": "1", "image": "web:latest"})
    response = login(deployer).post("/deployments/new/", {"service": "web", "release": release.pk,
                                                          "environment": "prod"})
    assert response.status_code == 400 and "run only pinned images" in text(response)


def test_the_request_form_needs_the_deployer_role(login, viewer, prod, web):
    assert login(viewer).get("/deployments/new/?service=web").status_code == 403
