import re

import pytest

from portal.audit.models import AuditEvent


@pytest.fixture
def omar(make_user):
    return make_user("omar", "approver")


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


def version_of(body, fragment):
    """The live version a page gives its fragment `fragment` (portal/live.py)."""
    return re.search(rf'id="{fragment}"[^>]*data-live-version="([0-9a-f]+)"', body).group(1)


def poll(client, url, fragment, tag=None):
    """What htmx sends to refresh `fragment` of the page at `url`, with the version it has (if any)."""
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": fragment}
    if tag:
        headers["HTTP_IF_NONE_MATCH"] = f'"{tag}"'
    return client.get(url, **headers)
