import pytest

from portal.audit.models import AuditEvent


@pytest.fixture
def login(client):
    """login(user) -> the test client, signed in as user."""

    def factory(user):
        client.force_login(user)
        return client

    return factory


@pytest.fixture
def remote_cluster(db):
    """A registered cluster that nothing talks to (jobs stay queued: no worker in page tests)."""
    from environments.models import Cluster

    return Cluster.objects.create(name="remote", mode="server", server="https://10.0.0.1:6443")


def events(action, outcome=None, **filters):
    qs = AuditEvent.objects.filter(action=action, **filters)
    if outcome:
        qs = qs.filter(outcome=outcome)
    return qs


def text(response):
    return response.content.decode()
