import pytest
from django.test import Client

from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def sign_in(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


def test_it_refuses_a_username_after_too_many_failures_even_with_the_right_password(make_user, settings):
    settings.GANTRY_LOGIN_MAX_FAILURES = 3
    make_user("ola", "viewer")
    client = Client()
    for _ in range(3):
        assert sign_in(client, "ola", "wrong").status_code == 200
    response = sign_in(client, "ola", "pw-12345-gantry")
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.login_throttled", actor="ola", outcome="denied").exists()


def test_it_lets_other_usernames_sign_in(make_user, settings):
    settings.GANTRY_LOGIN_MAX_FAILURES = 2
    make_user("ola", "viewer")
    make_user("ben", "viewer")
    client = Client()
    for _ in range(2):
        sign_in(client, "ola", "wrong")
    response = sign_in(client, "ben", "pw-12345-gantry")
    assert response.status_code == 302
