"""Releases: registering a version of a service, bound to one image."""
from django.db import IntegrityError, transaction

from portal.accounts import policies as roles
from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, deny
from portal import validation
from portal.validation import check_text

from .models import Release, Service

# The release formats live in portal.validation (shared with the pages and the schemas).
IMAGE_REFERENCE, GIT_SHA = validation.IMAGE_REFERENCE, validation.GIT_SHA


def check_image_reference(image, errors):
    return validation.check_image_reference(image, errors)


def register_release(user, data, request=None):
    if not roles.can_register_releases(user):
        deny("release.create", user=user, request=request, reason="registering releases needs the deployer role")
    errors = []
    service_name = validation.check_dns_label(data.get("service"), "service", errors)
    service = Service.objects.filter(name=service_name).first() if service_name else None
    if service_name and service is None:
        errors.append(f"service: no service named '{service_name}'")
    version = validation.check_version(data.get("version"), errors)
    image = validation.check_image_reference(data.get("image"), errors)
    git_sha = validation.check_git_sha(data.get("git_sha"), errors)
    notes = check_text(data.get("notes"), "notes", errors, required=False, max_length=10000) or ""
    if errors:
        raise InvalidInput(errors)
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
