"""The service catalog: adding, changing and removing services. Every change goes through these functions (pages, API, commands)."""
from django.db import IntegrityError, transaction

from portal.accounts import policies
from portal.audit.services import diff, record
from portal.errors import Conflict, InvalidInput, deny
from portal.validation import check_dns_label, check_text

from .choices import BLUE_GREEN, STRATEGY_CHOICES
from .manifests import ManifestError, blue_green_pair, format_problem, validate_manifest
from .models import Service

SERVICE_FIELDS = ("name", "team", "description", "strategy", "health_path", "manifest")
STRATEGIES = [value for value, _ in STRATEGY_CHOICES]


def service_snapshot(service):
    data = {field: getattr(service, field) for field in SERVICE_FIELDS if field != "manifest"}
    import hashlib

    data["manifest_sha256"] = hashlib.sha256(service.manifest.encode()).hexdigest()[:16]
    return data


def _clean_service(data, errors, instance=None):
    clean = {}
    if instance is None or "name" in data:
        clean["name"] = check_dns_label(data.get("name"), "name", errors)
    for field, max_length in (("team", 100), ("description", 2000)):
        if field in data:
            clean[field] = check_text(data.get(field), field, errors, required=False, max_length=max_length) or ""
    if "strategy" in data or instance is None:
        strategy = data.get("strategy") or "rolling"
        if strategy not in STRATEGIES:
            errors.append(f"strategy: '{strategy}' is not one of {', '.join(STRATEGIES)}")
        clean["strategy"] = strategy
    if "health_path" in data or instance is None:
        path = data.get("health_path") or "/health"
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 200 or " " in path:
            errors.append(f"health_path: '{path}' must be a URL path starting with '/' (e.g. /health)")
        clean["health_path"] = path
    documents = None
    if "manifest" in data or instance is None:
        try:
            documents = validate_manifest(data.get("manifest"))
            clean["manifest"] = data.get("manifest")
        except ManifestError as exc:
            errors.extend(f"manifest: {format_problem(p)}" for p in exc.problems)
    strategy = clean.get("strategy") or (instance.strategy if instance else "rolling")
    if documents is not None and strategy == BLUE_GREEN:
        if blue_green_pair(documents) is None:
            errors.append("manifest: a blue-green service needs exactly one Deployment and one Service")
    return clean


def create_service(user, data, request=None):
    if not policies.can_manage_services(user):
        deny("service.create", user=user, request=request, reason="only an admin can add services to the catalog")
    errors = []
    clean = _clean_service(data, errors)
    if errors:
        raise InvalidInput(errors)
    if Service.objects.filter(name=clean["name"]).exists():
        raise InvalidInput(f"name: a service named '{clean['name']}' already exists")
    service = Service(**clean)
    try:
        with transaction.atomic():
            service.save()
            record("service.create", actor=user, request=request, target=service,
                   changes=diff({}, service_snapshot(service)))
    except IntegrityError:
        raise Conflict(f"a service named '{clean['name']}' was created at the same moment")
    return service


def update_service(user, service, data, request=None):
    if not policies.can_manage_services(user):
        deny("service.update", user=user, request=request, target=service, reason="only an admin can change services")
    errors = []
    clean = _clean_service(data, errors, instance=service)
    if errors:
        raise InvalidInput(errors)
    if "name" in clean and Service.objects.filter(name=clean["name"]).exclude(pk=service.pk).exists():
        raise InvalidInput(f"name: a service named '{clean['name']}' already exists")
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        before = service_snapshot(service)
        for field, value in clean.items():
            setattr(service, field, value)
        service.save()
        changes = diff(before, service_snapshot(service))
        if changes:
            record("service.update", actor=user, request=request, target=service, changes=changes)
    return service


def delete_service(user, service, request=None):
    if not policies.can_manage_services(user):
        deny("service.delete", user=user, request=request, target=service, reason="only an admin can remove services")
    if service.releases.exists():
        raise Conflict(f"service {service.name} has releases and deployments, which the audit trail needs; "
                       "it cannot be removed")
    with transaction.atomic():
        record("service.delete", actor=user, request=request, target=service, changes=diff(service_snapshot(service), {}))
        service.delete()
