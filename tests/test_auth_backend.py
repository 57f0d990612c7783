"""The sign-in backend loads the profile with the user; sessions from before it stay signed in."""
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.accounts.models import Profile

pytestmark = pytest.mark.django_db


def queries_of(client, url):
    with CaptureQueriesContext(connection) as seen:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in seen.captured_queries]


def test_the_profile_comes_with_the_user_and_old_sessions_stay_signed_in(admin):
    Profile.objects.update_or_create(user=admin, defaults={"timezone": "Europe/Berlin"})
    new = Client()
    new.force_login(admin, backend="portal.accounts.backends.ModelWithProfileBackend")
    old = Client()
    old.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")

    with_profile = queries_of(new, "/environments/")
    before = queries_of(old, "/environments/")
    assert not any('FROM "accounts_profile"' in sql for sql in with_profile)
    assert sum('FROM "accounts_profile"' in sql for sql in before) == 1
    assert len(with_profile) == len(before) - 1
