"""API of self-service environments: templates, and approve / reject / extend of environments."""
from typing import Any, Optional

from ninja import Router, Schema, Status
from pydantic import ConfigDict

from portal.accounts import policies
from portal.errors import Forbidden, NotFound

from . import self_service
from .models import EnvironmentTemplate
from .serializers import template_out

router = Router(tags=["self-service environments"])


class TemplateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str
    tier: str
    description: Optional[str] = None
    cluster: Optional[str] = None
    quota: Optional[dict[str, Any]] = None
    limit_range: Optional[dict[str, Any]] = None
    network_policy: Optional[str] = None
    ingress_namespace: Optional[str] = None
    ttl_hours: Optional[int] = None
    max_ttl_hours: Optional[int] = None
    requires_approval: Optional[bool] = None
    required_approvals: Optional[int] = None
    parameters: Optional[dict[str, Any]] = None
    services: Optional[list[dict[str, Any]]] = None


class TemplatePatch(Schema):
    model_config = ConfigDict(extra="forbid")

    description: Optional[str] = None
    cluster: Optional[str] = None
    quota: Optional[dict[str, Any]] = None
    limit_range: Optional[dict[str, Any]] = None
    network_policy: Optional[str] = None
    ingress_namespace: Optional[str] = None
    ttl_hours: Optional[int] = None
    max_ttl_hours: Optional[int] = None
    requires_approval: Optional[bool] = None
    required_approvals: Optional[int] = None
    parameters: Optional[dict[str, Any]] = None
    services: Optional[list[dict[str, Any]]] = None


def _template(name):
    template = EnvironmentTemplate.objects.select_related("cluster").filter(name=name).first()
    if template is None:
        raise NotFound(f"no environment template '{name}'")
    return template


def _require_role(request):
    if not policies.has_any_role(request.user):
        raise Forbidden("you have no role in Gantry yet; ask an admin to grant you one")


@router.get("/environment-templates", response=list[dict[str, Any]])
def list_templates(request):
    _require_role(request)
    return [template_out(t) for t in EnvironmentTemplate.objects.select_related("cluster").order_by("name")]


@router.post("/environment-templates", response={201: dict[str, Any]})
def create_template(request, payload: TemplateIn):
    template = self_service.create_template(request.user, payload.dict(exclude_unset=True), request=request)
    return Status(201, template_out(_template(template.name)))


@router.get("/environment-templates/{name}", response=dict[str, Any])
def get_template(request, name: str):
    _require_role(request)
    return template_out(_template(name))


@router.patch("/environment-templates/{name}", response=dict[str, Any])
def update_template(request, name: str, payload: TemplatePatch):
    template = self_service.update_template(request.user, _template(name), payload.dict(exclude_unset=True),
                                            request=request)
    return template_out(_template(template.name))


@router.delete("/environment-templates/{name}", response={204: None})
def delete_template(request, name: str):
    self_service.delete_template(request.user, _template(name), request=request)
    return Status(204, None)
