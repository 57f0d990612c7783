"""Gantry's own 404, 403 and 500 pages in every mode, and one log line per refused request."""
import logging

import pytest
from django.test import Client

from tests.pages.conftest import text


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def mode(request, settings):
    settings.DEBUG = request.param
    return request.param


def test_an_unknown_page_is_gantrys_404_not_the_url_list(login, viewer, mode):
    response = login(viewer).get("/environments/nope/really/")
    body = text(response)
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in body and "/environments/nope/really/" in body
    assert "URLconf" not in body and "Using the URLconf" not in body and "Raised by" not in body
    assert 'aria-label="Main"' in body  # the page has the navigation: the user can go on from here


def test_a_missing_object_is_gantrys_404_in_debug_too(login, viewer, mode):
    response = login(viewer).get("/environments/nope/")
    assert response.status_code == 404 and "<h1>Not found</h1>" in text(response)
    assert "Raised by" not in text(response)


def test_a_missing_trailing_slash_still_redirects(login, viewer, mode):
    response = login(viewer).get("/environments")
    assert response.status_code == 301 and response.url == "/environments/"


def test_a_refusal_is_gantrys_403_page_and_one_log_line(login, viewer, mode, caplog, make_env):
    make_env("prod", tier="production")
    with caplog.at_level(logging.INFO):
        response = login(viewer).get("/environments/prod/edit/")
    assert response.status_code == 403 and "<h1>You may not do that</h1>" in text(response)
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert refusals[0].getMessage().startswith("refused 403 GET /environments/prod/edit/ user=vic")
    assert refusals[0].exc_info is None  # one line, no traceback


def test_an_unknown_api_path_stays_json(login, viewer, mode):
    response = login(viewer).get("/api/nope")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


@pytest.mark.urls("tests.pages.boom_urls")
def test_a_failure_is_gantrys_500_page_with_the_traceback_in_the_log(viewer, mode, caplog):
    client = Client(raise_request_exception=False)
    client.force_login(viewer)
    with caplog.at_level(logging.INFO):
        response = client.get("/boom/")
    body = text(response)
    assert response.status_code == 500 and "<h1>Something went wrong</h1>" in body
    assert "the database is on fire" not in body and "Traceback" not in body
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None  # logged once, with what failed
