"""Deployments executed against the sandbox cluster, over real HTTP, through the real services."""
import pytest

from deployments.actions import request_deployment
from deployments.releases import register_release
from deployments.models import Deployment
from portal import kube

DIGEST = "sha256:" + "b" * 64


class Log:
    """What a job function writes to, collected in a list."""

    def __init__(self):
        self.lines = []

    def __call__(self, message):
        self.lines.append(("info", message))

    def warning(self, message):
        self.lines.append(("warning", message))

    def error(self, message):
        self.lines.append(("error", message))

    @property
    def text(self):
        return "\n".join(message for _, message in self.lines)


@pytest.fixture
def log():
    return Log()


@pytest.fixture
def prod(make_env, cluster):
    kube.ensure_namespace(cluster, "prod", {})
    return make_env("prod", tier="production", cluster=cluster, required_approvals=0)


@pytest.fixture
def short_rollouts(settings):
    settings.GANTRY_ROLLOUT_TIMEOUT_SECONDS = 2


def image(service, version):
    return f"registry.example.com/shop/{service}:{version}@{DIGEST}"


def queue_deployment(user, env, service_name, version, image_ref=None):
    """Register a release (if new) and request its deployment; returns the queued deployment."""
    from deployments.models import Release

    release = Release.objects.filter(service__name=service_name, version=version).first()
    if release is None:
        release = register_release(user, {"service": service_name, "version": version,
                                                     "image": image_ref or image(service_name, version)})
    deployment = request_deployment(user, {"release": release.pk, "environment": env.slug})
    assert deployment.state == "queued", deployment.state
    return deployment


def state_of(deployment):
    return Deployment.objects.get(pk=deployment.pk)
