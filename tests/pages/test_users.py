import json

import pytest
from django.contrib.auth import get_user_model

from portal.accounts.models import ApiToken, RoleAssignment
from portal.audit.models import AuditEvent
from tests.pages.conftest import events, text

User = get_user_model()


# ---------------------------------------------------------------- users and roles

def test_it_lists_users_with_global_and_scoped_roles(login, admin, make_user, make_env):
    make_user("sam", "viewer", ("deployer", make_env("dev-a")))
    body = text(login(admin).get("/users/"))
    assert "sam" in body and "role-viewer" in body and "global" in body
    assert 'role-deployer">deployer</span>\n            on <a href="/environments/dev-a/">dev-a</a>' in body


@pytest.mark.parametrize("role", ["viewer", "deployer", "approver"])
def test_it_refuses_the_users_page_to_non_admins(login, make_user, role):
    assert login(make_user("sam", role)).get("/users/").status_code == 403


def test_it_refuses_the_users_page_to_an_environment_admin(login, make_user, make_env):
    assert login(make_user("sam", ("admin", make_env("dev-a")))).get("/users/").status_code == 403


def test_it_grants_a_global_role_to_an_existing_user(login, admin, nobody):
    response = login(admin).post("/users/roles/grant/", {"username": "nobody", "role": "viewer", "environment": ""})
    assert response.status_code == 302
    assert RoleAssignment.objects.filter(user=nobody, role="viewer", environment=None).exists()
    event = events("role.grant", "success", actor="ada").get()
    assert event.changes == {"role": [None, "viewer"], "scope": [None, "global"]}


def test_it_grants_a_role_on_one_environment(login, admin, nobody, make_env):
    env = make_env("dev-a")
    login(admin).post("/users/roles/grant/", {"username": "nobody", "role": "deployer", "environment": "dev-a"})
    assert RoleAssignment.objects.filter(user=nobody, role="deployer", environment=env).exists()
    assert events("role.grant", "success", environment="dev-a").exists()


def test_it_creates_a_missing_user_with_a_password(login, admin, client):
    login(admin).post("/users/roles/grant/", {"username": "newbie", "role": "viewer", "password": "s3cret-pass-123"})
    user = User.objects.get(username="newbie")
    assert user.check_password("s3cret-pass-123")
    assert events("user.create", "success").exists()
    assert "s3cret-pass-123" not in json.dumps(list(AuditEvent.objects.values("changes", "detail")))


def test_it_does_not_grant_the_same_role_twice(login, admin, viewer):
    login(admin).post("/users/roles/grant/", {"username": "vic", "role": "viewer"})
    assert RoleAssignment.objects.filter(user=viewer, role="viewer").count() == 1
    assert not events("role.grant").exists()


def test_it_refuses_an_unknown_role_and_keeps_the_input(login, admin, nobody):
    response = login(admin).post("/users/roles/grant/", {"username": "nobody", "role": "superuser"})
    assert response.status_code == 400
    assert "role: &#x27;superuser&#x27; is not one of" in text(response)
    assert 'value="nobody"' in text(response)
    assert not RoleAssignment.objects.filter(user=nobody).exists()


def test_it_refuses_an_unknown_environment(login, admin, nobody):
    response = login(admin).post("/users/roles/grant/", {"username": "nobody", "role": "viewer", "environment": "nope"})
    assert response.status_code == 400 and "no environment &#x27;nope&#x27;" in text(response)
    assert not RoleAssignment.objects.filter(user=nobody).exists()


def test_it_refuses_a_direct_grant_post_from_a_non_admin(login, deployer):
    response = login(deployer).post("/users/roles/grant/", {"username": "dee", "role": "admin"})
    assert response.status_code == 403
    assert not RoleAssignment.objects.filter(user=deployer, role="admin").exists()
    assert events("role.grant", "denied", actor="dee").exists()


def test_it_revokes_a_role(login, admin, viewer):
    assignment = RoleAssignment.objects.get(user=viewer)
    client = login(admin)
    assert f'action="/users/roles/{assignment.pk}/revoke/"' in text(client.get("/users/"))
    response = client.post(f"/users/roles/{assignment.pk}/revoke/")
    assert response.status_code == 302
    assert not RoleAssignment.objects.filter(user=viewer).exists()
    event = events("role.revoke", "success").get()
    assert event.changes == {"role": ["viewer", None], "scope": ["global", None]}


def test_it_keeps_the_last_global_admin(login, admin):
    assignment = RoleAssignment.objects.get(user=admin, role="admin")
    response = login(admin).post(f"/users/roles/{assignment.pk}/revoke/", follow=True)
    assert "last global admin" in text(response)
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()


def test_it_refuses_a_direct_revoke_post_from_a_non_admin(login, deployer, viewer):
    assignment = RoleAssignment.objects.get(user=viewer)
    assert login(deployer).post(f"/users/roles/{assignment.pk}/revoke/").status_code == 403
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()
    assert events("role.revoke", "denied", actor="dee").exists()


def test_it_explains_that_a_role_was_already_revoked(login, admin):
    response = login(admin).post("/users/roles/999999/revoke/", follow=True)
    assert "it may have been revoked already" in text(response)


# ---------------------------------------------------------------- API tokens

def test_it_shows_a_new_token_once(login, deployer, client):
    response = login(deployer).post("/tokens/new/", {"name": "ci"})
    token = ApiToken.objects.get(user=deployer)
    body = text(response)
    raw = body.split('id="new-token" class="code token-value" value="')[1].split('"')[0]
    assert raw.startswith(token.prefix) and "shown only this once" in body
    assert "no-store" in response["Cache-Control"]
    assert raw not in text(client.get("/tokens/"))
    assert f"{token.prefix}…" in text(client.get("/tokens/"))


def test_the_new_token_works_on_the_api(login, viewer, client):
    body = text(login(viewer).post("/tokens/new/", {"name": "script"}))
    raw = body.split('id="new-token" class="code token-value" value="')[1].split('"')[0]
    client.logout()
    response = client.get("/api/v1/environments", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_it_audits_token_creation_without_the_token(login, deployer):
    body = text(login(deployer).post("/tokens/new/", {"name": "ci"}))
    raw = body.split('id="new-token" class="code token-value" value="')[1].split('"')[0]
    event = events("token.create", "success", actor="dee").get()
    assert event.detail["name"] == "ci"
    stored = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert raw not in stored and raw[:12] not in stored


def test_it_refuses_a_too_long_token_name(login, deployer):
    response = login(deployer).post("/tokens/new/", {"name": "x" * 101})
    assert response.status_code == 400 and "name: at most 100 characters" in text(response)
    assert not ApiToken.objects.exists()


def test_it_lets_a_user_without_role_manage_tokens(login, nobody):
    assert login(nobody).get("/tokens/").status_code == 200


def test_it_revokes_a_token(login, deployer):
    client = login(deployer)
    client.post("/tokens/new/", {"name": "ci"})
    token = ApiToken.objects.get(user=deployer)
    response = client.post(f"/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert events("token.revoke", "success", actor="dee").exists()
    assert f"{token.prefix}…" not in text(client.get("/tokens/"))


def test_it_refuses_to_revoke_someone_elses_token(login, deployer, viewer):
    token = ApiToken.objects.create(user=viewer, prefix="gty_abcdefgh", digest="d" * 64)
    assert login(deployer).post(f"/tokens/{token.pk}/revoke/").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    assert events("token.revoke", "denied", actor="dee").exists()


def test_it_lists_only_my_tokens(login, deployer, viewer):
    ApiToken.objects.create(user=viewer, name="vics-token", prefix="gty_abcdefgh", digest="d" * 64)
    assert "vics-token" not in text(login(deployer).get("/tokens/"))
