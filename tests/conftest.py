import pytest
from django.test import Client

from portal.accounts.models import ApiToken, RoleAssignment
from tests.fixtures_data import WEB_MANIFEST


@pytest.fixture
def make_user(django_user_model):
    """make_user("alice", "deployer") or make_user("bob", ("approver", env)) or several roles."""

    def factory(username, *roles, password="pw-12345-gantry"):
        user = django_user_model.objects.create_user(username=username, password=password)
        for role in roles:
            environment = None
            if isinstance(role, tuple):
                role, environment = role
            RoleAssignment.objects.create(user=user, role=role, environment=environment)
        return user

    return factory


@pytest.fixture
def admin(make_user):
    return make_user("ada", "admin")


@pytest.fixture
def viewer(make_user):
    return make_user("vic", "viewer")


@pytest.fixture
def deployer(make_user):
    return make_user("dee", "deployer")


@pytest.fixture
def approver(make_user):
    return make_user("abe", "approver")


@pytest.fixture
def nobody(make_user):
    return make_user("nobody")


def token_for(user):
    raw, prefix, digest = ApiToken.generate()
    ApiToken.objects.create(user=user, prefix=prefix, digest=digest)
    return raw


class ApiClient:
    """A test client that talks JSON with a bearer token."""

    def __init__(self, user=None, token=None):
        self.client = Client()
        self.token = token or (token_for(user) if user is not None else None)

    def _headers(self):
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def get(self, path, params=None):
        return self.client.get(path, params or {}, **self._headers())

    def post(self, path, data=None):
        return self.client.post(path, data or {}, content_type="application/json", **self._headers())

    def patch(self, path, data=None):
        return self.client.patch(path, data or {}, content_type="application/json", **self._headers())

    def delete(self, path):
        return self.client.delete(path, **self._headers())


@pytest.fixture
def api():
    """api(user) -> ApiClient authenticated as user; api() -> anonymous."""
    return lambda user=None, token=None: ApiClient(user, token)


@pytest.fixture
def sandbox():
    from portal.sandbox import SandboxCluster

    cluster = SandboxCluster(port=0)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 API in server mode over real HTTP on a free port."""
    from moto.server import ThreadedMotoServer

    from portal.throwaway import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def cluster(db, sandbox):
    from environments.models import Cluster

    return Cluster.objects.create(name="sandbox", mode="server", server=sandbox.url, is_sandbox=True)


@pytest.fixture
def make_env(db):
    from environments.models import Environment

    def factory(slug, tier="development", cluster=None, **extra):
        extra.setdefault("name", slug.replace("-", " ").title())
        extra.setdefault("namespace", slug)
        extra.setdefault("status", "ready")
        return Environment.objects.create(slug=slug, tier=tier, cluster=cluster, **extra)

    return factory


@pytest.fixture
def make_service(db):
    from deployments.models import Service

    def factory(name="web", **extra):
        extra.setdefault("manifest", WEB_MANIFEST)
        return Service.objects.create(name=name, **extra)

    return factory


@pytest.fixture
def login(client):
    """login(user) -> the test client, signed in as user."""

    def factory(user):
        client.force_login(user)
        return client

    return factory


@pytest.fixture
def web(make_service):
    """The plain catalog service "web" (modules that need another strategy or manifest define their own)."""
    return make_service("web")


@pytest.fixture
def prod(make_env):
    """Production, two approvals, no self-approval (modules that need a cluster or other rules define their own)."""
    return make_env("prod", tier="production", required_approvals=2, prevent_self_approval=True)


@pytest.fixture
def web_manifest():
    return WEB_MANIFEST


@pytest.fixture
def clock(monkeypatch):
    """The time Gantry reads (`django.utils.timezone.now`), set by the test: `clock.set(moment)`.

    Window and freeze tests use it so that they pass at any hour of any day."""
    from django.utils import timezone

    class Clock:
        def set(self, moment):
            monkeypatch.setattr(timezone, "now", lambda: moment)
            return moment

    return Clock()

