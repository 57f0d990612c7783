"""API of self-service environments: templates, and approve / reject / extend of environments."""

from ninja import Router, Status

from portal.api_auth import require_role
from portal.errors import NotFound
from portal.schema_types import Approval, Rejection

from . import approvals, expiry, self_service
from .models import Environment, EnvironmentTemplate
from .queries import visible_environment
from .schemas import Extension, TemplateChange, TemplateCreate
from .serializers import EnvironmentDecisionOut, TemplateOut, environment_out, template_out

router = Router(tags=["self-service environments"])


def _template(name):
    template = EnvironmentTemplate.objects.select_related("cluster").filter(name=name).first()
    if template is None:
        raise NotFound(f"no environment template '{name}'")
    return template


@router.get("/environment-templates", response=list[TemplateOut])
def list_templates(request):
    require_role(request)
    return [template_out(t) for t in EnvironmentTemplate.objects.select_related("cluster").order_by("name")]


@router.post("/environment-templates", response={201: TemplateOut})
def create_template(request, payload: TemplateCreate):
    template = self_service.create_template(request.user, payload, request=request)
    return Status(201, template_out(_template(template.name)))


@router.get("/environment-templates/{name}", response=TemplateOut)
def get_template(request, name: str):
    require_role(request)
    return template_out(_template(name))


@router.patch("/environment-templates/{name}", response=TemplateOut)
def update_template(request, name: str, payload: TemplateChange):
    template = self_service.update_template(request.user, _template(name), payload,
                                            request=request)
    return template_out(_template(template.name))


@router.delete("/environment-templates/{name}", response={204: None})
def delete_template(request, name: str):
    self_service.delete_template(request.user, _template(name), request=request)
    return Status(204, None)


def _out(env):
    env = Environment.objects.select_related("cluster", "owner", "promotion_from").get(pk=env.pk)
    return environment_out(env) | approval_summary(env)


def approval_summary(env):
    purpose = approvals.pending_purpose(env)
    decided = [a for a in env.approvals.select_related("user").all()]
    return {
        "pending_approval": purpose,
        "approvals_required": approvals.required_approvals(env, purpose) if purpose else None,
        "approvals": [{"user": a.user.get_username(), "purpose": a.purpose, "decision": a.decision,
                       "comment": a.comment, "at": a.at.isoformat()} for a in decided],
    }


@router.post("/environments/{slug}/approve", response=EnvironmentDecisionOut, exclude_unset=True)
def approve_environment(request, slug: str, payload: Approval = None):
    env, job = approvals.decide(request.user, visible_environment(request.user, slug), approvals.APPROVE,
                                comment=(payload.comment if payload else "") or "", request=request)
    return _out(env) | ({"job": str(job.pk)} if job is not None else {})


@router.post("/environments/{slug}/reject", response=EnvironmentDecisionOut, exclude_unset=True)
def reject_environment(request, slug: str, payload: Rejection):
    env, _ = approvals.decide(request.user, visible_environment(request.user, slug), approvals.REJECT,
                              comment=payload.comment or "", request=request)
    return _out(env)


@router.post("/environments/{slug}/extend", response=EnvironmentDecisionOut, exclude_unset=True)
def extend_environment(request, slug: str, payload: Extension):
    env = expiry.extend_environment(request.user, visible_environment(request.user, slug), payload.hours, request=request)
    return _out(env)
