"""Helpers shared by the page tests of releases, deployments and approvals."""
from datetime import timedelta

from django.utils import timezone

from deployments.actions import request_deployment
from deployments.models import Deployment, Release
from deployments.releases import register_release
from deployments.rendering import manifest_hash, render_text

HTMX = {"HTTP_HX_REQUEST": "true"}
DIGEST = "sha256:" + "c" * 64


def image(version, service="web"):
    return f"registry.example.com/shop/{service}:{version}@{DIGEST}"


def release_of(user, version, service="web", **extra):
    found = Release.objects.filter(service__name=service, version=version).first()
    return found or register_release(user, {"service": service, "version": version,
                                                       "image": image(version, service), **extra})


def ask(user, env, version="1.1.0", service="web", **extra):
    """Request a deployment through the service, as CI or the form would."""
    release = release_of(user, version, service)
    return request_deployment(user, {"release": release.pk, "environment": env.slug, **extra})


def deployed(user, env, version, service="web", minutes_ago=60, color="", state="succeeded"):
    """A deployment that already ran (rows only: page tests run no jobs)."""
    release = release_of(user, version, service)
    finished = timezone.now() - timedelta(minutes=minutes_ago)
    return Deployment.objects.create(
        release=release, environment=env, service=release.service, requested_by=user, state=state,
        image=release.image, manifest_hash=manifest_hash(release.service, release, env),
        rendered_manifest=render_text(release.service, release, env), finished_at=finished,
        started_at=finished - timedelta(minutes=1), color=color)


def state_of(deployment):
    return Deployment.objects.get(pk=deployment.pk).state
