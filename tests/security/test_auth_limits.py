"""Flooding with made-up tokens, locking out an approver, reading /metrics anonymously
(issue #7, items 4, 5 and 11)."""
import datetime
import threading

import pytest
from django.db import connections
from django.test import Client

from portal.accounts.models import ThrottleCounter
from portal.audit.models import AuditEvent
from tests.conftest import token_for

PASSWORD = "pw-12345-gantry"


@pytest.mark.django_db
def test_failed_tokens_are_throttled_per_address_with_one_event_per_window(settings, viewer):
    settings.GANTRY_TOKEN_FAILURES_PER_WINDOW = 5
    client = Client(REMOTE_ADDR="203.0.113.7")
    answers = [client.get("/api/v1/environments", HTTP_AUTHORIZATION=f"Bearer made-up-{n}") for n in range(30)]
    assert [a.status_code for a in answers] == [401] * 5 + [429] * 25
    assert int(answers[-1]["Retry-After"]) >= 1
    assert "too many failed tokens" in answers[-1].json()["detail"]
    # one audit event for the address's window, throttled or not: the first failure's
    [event] = AuditEvent.objects.filter(action__startswith="auth.token_")
    assert (event.action, event.ip, event.outcome) == ("auth.token_rejected", "203.0.113.7", "denied")
    assert event.detail["limit"] == 5 and "429" in event.detail["note"]
    # the address's real token still works, and another address is not affected
    assert client.get("/api/v1/environments", HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}").status_code == 200
    other = Client(REMOTE_ADDR="198.51.100.1")
    assert other.get("/api/v1/environments", HTTP_AUTHORIZATION="Bearer made-up").status_code == 401
    assert AuditEvent.objects.filter(action__startswith="auth.token_", ip="198.51.100.1").count() == 1


@pytest.mark.django_db
def test_each_window_of_an_address_has_its_one_event(settings, clock):
    """The next window starts counting (and auditing) afresh: one event per (address, window)."""
    settings.GANTRY_TOKEN_FAILURES_PER_WINDOW = 3
    client = Client(REMOTE_ADDR="203.0.113.8")
    start = datetime.datetime(2026, 3, 2, 10, 0, 5, tzinfo=datetime.UTC)
    for window in range(2):
        clock.set(start + datetime.timedelta(seconds=window * settings.GANTRY_TOKEN_FAILURE_WINDOW_SECONDS))
        answers = [client.get("/api/v1/environments", HTTP_AUTHORIZATION=f"Bearer made-up-{n}") for n in range(8)]
        assert [a.status_code for a in answers] == [401] * 3 + [429] * 5
    events = AuditEvent.objects.filter(action__startswith="auth.token_", ip="203.0.113.8")
    assert [e.action for e in events] == ["auth.token_rejected"] * 2
    assert len({e.detail["window_ends_at"] for e in events}) == 2


def _sign_in(username, password, address):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


def _signed_in(response):
    return response.status_code == 302


@pytest.mark.django_db
def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_elsewhere(make_user):
    make_user("rita", "approver")
    for _ in range(10):
        assert not _signed_in(_sign_in("rita", "wrong", "203.0.113.9"))
    refused = _sign_in("rita", PASSWORD, "203.0.113.9")
    assert not _signed_in(refused) and b"Too many failed sign-ins" in refused.content
    assert _signed_in(_sign_in("rita", PASSWORD, "198.51.100.20"))  # rita at her desk
    assert AuditEvent.objects.filter(action="auth.login_throttled", actor="rita").count() == 1


@pytest.mark.django_db
def test_spraying_many_usernames_from_one_address_is_limited(settings, make_user):
    settings.GANTRY_LOGIN_MAX_FAILURES_PER_ADDRESS = 5
    make_user("omar", "approver")
    for n in range(5):
        assert not _signed_in(_sign_in(f"user{n}", "guess", "203.0.113.10"))
    refused = _sign_in("omar", PASSWORD, "203.0.113.10")
    assert not _signed_in(refused) and b"Too many failed sign-ins from your address" in refused.content
    assert _signed_in(_sign_in("omar", PASSWORD, "198.51.100.21"))


@pytest.mark.django_db
def test_a_right_password_resets_the_count_for_that_address(make_user):
    make_user("rita", "approver")
    for _ in range(9):
        _sign_in("rita", "wrong", "203.0.113.11")
    assert _signed_in(_sign_in("rita", PASSWORD, "203.0.113.11"))
    for _ in range(9):
        _sign_in("rita", "wrong", "203.0.113.11")
    assert _signed_in(_sign_in("rita", PASSWORD, "203.0.113.11"))


@pytest.mark.django_db(transaction=True)
def test_the_count_is_exact_under_concurrency(make_user):
    """30 parallel wrong passwords against a limit of 10: exactly 10 are checked, 20 refused (PostgreSQL)."""
    make_user("rita", "approver")
    results, barrier = [], threading.Barrier(30)

    def attempt():
        try:
            barrier.wait(timeout=30)
            results.append(_sign_in("rita", "wrong", "203.0.113.12").content)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 30
    assert sum(b"Too many failed sign-ins" in body for body in results) == 20
    assert AuditEvent.objects.filter(action="auth.login_failed", actor="rita").count() == 10
    assert AuditEvent.objects.filter(action="auth.login_throttled").count() == 1
    assert ThrottleCounter.objects.get(bucket="login:203.0.113.12:rita").count == 30


@pytest.mark.django_db
def test_metrics_need_a_token_or_an_allowed_address(settings, make_user, make_env, viewer):
    make_env("dev")
    settings.GANTRY_METRICS_ALLOWED_IPS = []
    anonymous = Client().get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert b"gantry_environments" not in anonymous.content
    scoped = make_user("scoped", ("viewer", make_env("stage", tier="staging")))
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token_for(scoped)}").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    assert response.status_code == 200 and b"gantry_environments" in response.content


@pytest.mark.django_db
def test_metrics_for_the_scrape_token_and_allow_listed_addresses(settings, make_env):
    make_env("dev")
    settings.GANTRY_METRICS_TOKEN = "scrape-secret-0123456789"
    settings.GANTRY_METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 401
