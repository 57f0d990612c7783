"""Fixtures of the page tests of releases, deployments and approvals."""
import pytest


@pytest.fixture
def prod(make_env):
    return make_env("prod", tier="production", required_approvals=2, prevent_self_approval=True)


@pytest.fixture
def web(make_service):
    return make_service("web")


@pytest.fixture
def omar(make_user):
    return make_user("omar", "approver")
