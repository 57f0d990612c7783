"""The service catalog: adding, changing and removing services. Every change goes through these functions (pages, API, commands)."""
import hashlib


from portal.accounts import policies
from portal.audit.writes import change_audited, create_audited, delete_audited
from portal.errors import Conflict, InvalidInput, deny_if

from .choices import BLUE_GREEN
from .manifests import blue_green_pair, validate_manifest
from .models import Service
from .schemas import ServiceChange, ServiceCreate

SERVICE_FIELDS = ("name", "team", "description", "strategy", "health_path", "manifest")


def service_snapshot(service):
    data = {field: getattr(service, field) for field in SERVICE_FIELDS if field != "manifest"}

    data["manifest_sha256"] = hashlib.sha256(service.manifest.encode()).hexdigest()[:16]
    return data


def _blue_green_problem(clean, instance=None):
    """A blue-green service needs one Deployment and one Service in its manifest (the only rule that
    needs both the strategy and the manifest, which a change may take from the stored service)."""
    strategy = clean.get("strategy") or (instance.strategy if instance else "rolling")
    if "manifest" in clean and strategy == BLUE_GREEN and blue_green_pair(validate_manifest(clean["manifest"])) is None:
        raise InvalidInput("manifest: a blue-green service needs exactly one Deployment and one Service")


def create_service(user, data, request=None):
    deny_if(policies.admin_refusal(user, "add services to the catalog"), "service.create", user=user, request=request)
    clean = ServiceCreate.validated(data)
    _blue_green_problem(clean)
    if Service.objects.filter(name=clean["name"]).exists():
        raise InvalidInput(f"name: a service named '{clean['name']}' already exists")
    return create_audited(Service(**clean), "service.create", snapshot=service_snapshot, actor=user, request=request,
                          taken=f"a service named '{clean['name']}' was created at the same moment")


def update_service(user, service, data, request=None):
    deny_if(policies.admin_refusal(user, "change services"), "service.update", user=user, request=request,
            target=service)
    clean = ServiceChange.validated(data)
    _blue_green_problem(clean, instance=service)
    return change_audited(service, clean, "service.update", snapshot=service_snapshot, actor=user, request=request)


def delete_service(user, service, request=None):
    deny_if(policies.admin_refusal(user, "remove services"), "service.delete", user=user, request=request,
            target=service)
    if service.releases.exists():
        raise Conflict(f"service {service.name} has releases and deployments, which the audit trail needs; "
                       "it cannot be removed")
    delete_audited(service, "service.delete", snapshot=service_snapshot, actor=user, request=request)
