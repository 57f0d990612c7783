"""Releases: registering a version of a service, bound to one image."""
from django.db import IntegrityError, transaction

from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, deny

from . import policies
from .models import Release, Service
from .schemas import ReleaseCreate


def register_release(user, data, request=None):
    """`data`: a dict (a page's form, a command) or the API's ReleaseCreate; either way validated by it."""
    refusal = policies.release_refusal(user)
    if refusal:
        deny("release.create", user=user, request=request, reason=refusal)
    clean = ReleaseCreate.validated(data)
    version, image, git_sha = clean["version"], clean["image"], clean.get("git_sha") or ""
    notes = clean.get("notes") or ""
    service = Service.objects.filter(name=clean["service"]).first()
    if service is None:
        raise InvalidInput(f"service: no service named '{clean['service']}'")
    existing = Release.objects.filter(service=service, version=version).first()
    if existing is not None:
        if existing.image != image:
            raise Conflict(f"{service.name} {version} is already registered with image {existing.image}; "
                           "a version is bound to one image: register a new version")
        raise Conflict(f"{service.name} {version} is already registered (release {existing.pk})")
    try:
        with transaction.atomic():
            release = Release.objects.create(service=service, version=version, image=image, git_sha=git_sha,
                                             notes=notes, created_by=user)
            record("release.create", actor=user, request=request, target=release,
                   changes={"service": [None, service.name], "version": [None, version], "image": [None, image],
                            "git_sha": [None, git_sha]})
    except IntegrityError:
        raise Conflict(f"{service.name} {version} was registered at the same moment; fetch it instead") from None
    return release
