"""The one live-update mechanism (portal/live.py): polled fragments answered 304 while nothing changed."""
import re

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from deployments.models import Deployment
from deployments.monitoring.models import CellHealth
from portal import live
from tests.pages.conftest import text
from tests.pages.deployments.helpers import deployed


@pytest.fixture
def prod(make_env):
    return make_env("prod", tier="production")


POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "env-live"}


def version_in(body):
    return re.search(r'data-live-version="([0-9a-f]+)"', body).group(1)


def poll(client, tag=None):
    headers = dict(POLL, HTTP_IF_NONE_MATCH=f'"{tag}"') if tag else POLL
    return client.get("/environments/prod/live/", **headers)


def test_a_poll_answers_the_fragment_with_its_version_as_etag(login, viewer, deployer, prod, web):
    deployed(deployer, prod, "1.0.0")
    response = poll(login(viewer))
    body = text(response)
    assert response.status_code == 200 and body.startswith('<section id="env-live"')
    assert response["ETag"] == f'"{version_in(body)}"'
    assert "no-store" in response["Cache-Control"]  # the browser must not answer polls from its cache


def test_a_poll_of_an_unchanged_fragment_is_answered_304_without_a_body(login, viewer, deployer, prod, web):
    deployed(deployer, prod, "1.0.0")
    client = login(viewer)
    tag = version_in(text(poll(client)))
    again = poll(client, tag)
    assert again.status_code == 304 and again.content == b""


def test_the_full_page_holds_the_same_version_as_the_first_poll(login, viewer, deployer, prod, web):
    deployed(deployer, prod, "1.0.0")
    client = login(viewer)
    page = text(client.get("/environments/prod/live/"))
    assert poll(client, version_in(page)).status_code == 304


def test_a_deployment_flip_changes_the_version_and_the_fragment(login, viewer, deployer, prod, web):
    running = deployed(deployer, prod, "1.1.0", state="running")
    client = login(viewer)
    tag = version_in(text(poll(client)))
    Deployment.objects.filter(pk=running.pk).update(state="succeeded", updated_at=timezone.now())
    response = poll(client, tag)
    assert response.status_code == 200 and version_in(text(response)) != tag
    assert f'<a href="/deployments/{running.pk}/">1.1.0</a>' in text(response)


def test_a_new_health_check_changes_the_fragment(login, viewer, deployer, prod, web):
    deployed(deployer, prod, "1.0.0")
    client = login(viewer)
    tag = version_in(text(poll(client)))
    now = timezone.now()
    CellHealth.objects.create(environment=prod, service=web, status="healthy", ready_replicas=3, desired_replicas=3,
                              checked_at=now, since=now, changed_at=now)
    response = poll(client, tag)
    assert response.status_code == 200 and "health-healthy" in text(response)


def test_another_user_gets_another_version(login, viewer, deployer, prod, web):
    deployed(deployer, prod, "1.0.0")
    tag = version_in(text(poll(login(viewer))))
    assert poll(login(deployer), tag).status_code == 200  # deployer sees a rollback button the viewer does not


def test_a_poll_after_the_session_ended_reloads_the_page_instead_of_swapping_in_the_login_form(client, prod):
    response = client.get("/environments/prod/live/", HTTP_X_GANTRY_LIVE="1", HTTP_IF_NONE_MATCH='"abc"', **POLL)
    assert response.status_code == 200 and response["HX-Refresh"] == "true" and response.content == b""


def test_the_tag_writes_the_polling_attributes_and_stops_without_a_version():
    request = RequestFactory().get("/jobs/?state=failed&page=2")
    template = Template('{% load live %}<div id="x" {% live v %}></div>')
    assert template.render(Context({"request": request, "v": "abc"})) == (
        '<div id="x" hx-get="/jobs/?state=failed&amp;page=2" hx-trigger="every 1s" hx-swap="outerHTML" '
        'data-live-version="abc"></div>')
    assert template.render(Context({"request": request, "v": None})) == '<div id="x" ></div>'


def test_version_parts_from_one_aggregate_query(db, deployer, prod, web, django_assert_num_queries):
    deployed(deployer, prod, "1.0.0")
    with django_assert_num_queries(1):
        parts = live.state_of(Deployment.objects.filter(environment=prod), "updated_at", "finished_at")
    assert parts[0] == 1 and len(parts) == 3
