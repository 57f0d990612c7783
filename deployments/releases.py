"""Releases: registering a version of a service, bound to one image."""
import re

from django.db import IntegrityError, transaction

from portal.accounts import policies as roles
from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, deny
from portal.validation import check_text

from .models import Release, Service

# An OCI image reference: [registry[:port]/]path[:tag][@algo:digest]
IMAGE_REFERENCE = re.compile(
    r"^(?:(?P<registry>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)
GIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def check_image_reference(image, errors):
    if not isinstance(image, str) or not image:
        errors.append("image: required (an OCI reference such as registry.example.com/web:1.4.2@sha256:...)")
        return None
    if len(image) > 512 or not IMAGE_REFERENCE.match(image):
        errors.append(f"image: '{image[:200]}' is not a valid OCI image reference "
                      "(expected [registry/]name[:tag][@sha256:digest], lowercase name)")
        return None
    return image


def register_release(user, data, request=None):
    service_name = data.get("service")
    service = Service.objects.filter(name=service_name).first() if isinstance(service_name, str) else None
    if not roles.can_register_releases(user):
        deny("release.create", user=user, request=request, reason="registering releases needs the deployer role")
    errors = []
    if service is None:
        errors.append(f"service: no service named '{service_name}'")
    version = check_text(data.get("version"), "version", errors, max_length=128)
    image = check_image_reference(data.get("image"), errors)
    git_sha = data.get("git_sha") or ""
    if git_sha and (not isinstance(git_sha, str) or not GIT_SHA.match(git_sha)):
        errors.append(f"git_sha: '{git_sha}' must be 7 to 40 lowercase hex characters")
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
        raise Conflict(f"{service.name} {version} was registered at the same moment; fetch it instead")
    return release
