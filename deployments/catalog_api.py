"""API for the service catalog (API.md): list, add, fetch, change, remove services."""
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from portal.api_auth import require_role
from portal.schema_types import Out, Timestamp

from . import catalog
from .models import Service
from .schemas import ServiceChange, ServiceCreate

router = Router(tags=["services"])


class ServiceSummaryOut(Out):
    """A service in the catalog list (without its manifest)."""

    id: int
    name: str
    team: str
    description: str
    strategy: str
    health_path: str
    created_at: Timestamp
    updated_at: Timestamp


class ServiceOut(ServiceSummaryOut):
    manifest: str


def service_out(service, with_manifest=True):
    data = {
        "id": service.pk,
        "name": service.name,
        "team": service.team,
        "description": service.description,
        "strategy": service.strategy,
        "health_path": service.health_path,
        "created_at": service.created_at.isoformat(),
        "updated_at": service.updated_at.isoformat(),
    }
    if with_manifest:
        data["manifest"] = service.manifest
    return data


@router.get("/services", response=list[ServiceSummaryOut])
def list_services(request, team: str | None = None):
    require_role(request)
    qs = Service.objects.all()
    if team:
        qs = qs.filter(team=team)
    return [service_out(s, with_manifest=False) for s in qs]


@router.post("/services", response={201: ServiceOut})
def create_service(request, payload: ServiceCreate):
    return Status(201, service_out(catalog.create_service(request.user, payload, request=request)))


@router.get("/services/{name}", response=ServiceOut)
def get_service(request, name: str):
    require_role(request)
    return service_out(get_object_or_404(Service, name=name))


@router.patch("/services/{name}", response=ServiceOut)
def update_service(request, name: str, payload: ServiceChange):
    service = get_object_or_404(Service, name=name)
    return service_out(catalog.update_service(request.user, service, payload, request=request))


@router.delete("/services/{name}", response={204: None})
def delete_service(request, name: str):
    catalog.delete_service(request.user, get_object_or_404(Service, name=name), request=request)
    return Status(204, None)
