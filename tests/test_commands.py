import io

import pytest
from django.core.management import CommandError, call_command

from portal.accounts.models import ApiToken, RoleAssignment
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_grant_creates_the_user_and_the_role_and_audits_it(make_env):
    make_env("prod", tier="production")
    out, _ = run("grant", "carol", "approver", "--environment", "prod")
    assert "carol granted approver on environment prod (user created)" in out
    assignment = RoleAssignment.objects.get(user__username="carol")
    assert assignment.role == "approver" and assignment.environment.slug == "prod"
    assert not assignment.user.has_usable_password()
    assert AuditEvent.objects.filter(action="role.grant", actor="manage.py").exists()


def test_grant_is_idempotent():
    run("grant", "carol", "viewer")
    out, _ = run("grant", "carol", "viewer")
    assert "already had viewer" in out
    assert RoleAssignment.objects.count() == 1


@pytest.mark.parametrize("args, message", [
    (("grant", "carol", "superuser"), "role"),
    (("grant", "carol", "viewer", "--environment", "nowhere"), "no environment 'nowhere'"),
    (("grant", "carol", "viewer", "--password", "123"), "password"),
])
def test_grant_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not RoleAssignment.objects.exists()


def test_create_api_token_prints_the_token_last_and_stores_only_its_hash(make_user):
    make_user("ci-bot", "deployer")
    out, err = run("create_api_token", "ci-bot", "--name", "pipeline")
    token = out.strip().splitlines()[-1]
    assert token.startswith("gty_")
    stored = ApiToken.objects.get()
    assert stored.name == "pipeline" and token not in stored.digest
    event = AuditEvent.objects.get(action="token.create")
    assert event.actor == "manage.py" and token not in str(event.detail)


def test_create_api_token_for_an_unknown_user():
    with pytest.raises(CommandError, match="no active user"):
        run("create_api_token", "ghost")
