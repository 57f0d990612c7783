"""Pages for the service catalog. They parse the form, call deployments.catalog, render."""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from portal.accounts import policies
from portal.pages import delete_page, form_action, needs_role, paginate, require

from . import catalog
from .choices import STRATEGY_CHOICES
from .models import Service

FIELDS = ("name", "team", "description", "strategy", "health_path", "manifest")


def _service(name):
    service = Service.objects.filter(name=name).first()
    if service is None:
        raise Http404(f"no service '{name}'")
    return service


def _require_manager(request):
    require(policies.admin_refusal(request.user, "change the service catalog"))


@login_required
@needs_role
def service_list(request):
    services_page = paginate(request, Service.objects.order_by("name").defer("manifest"))
    return render(request, "services/list.html", {
        "section": "services",
        "page": services_page,
        "can_manage": policies.can_manage_services(request.user),
    })


@login_required
@needs_role
def service_detail(request, name):
    return render(request, "services/detail.html", {
        "section": "services",
        "service": _service(name),
        "can_manage": policies.can_manage_services(request.user),
    })


def _form_context(values, service=None):
    return {"section": "services", "values": values, "service": service, "strategies": STRATEGY_CHOICES}


def _posted(request, fields):
    # The manifest is kept exactly as typed (YAML is whitespace-sensitive); browsers send CRLF.
    data = {field: request.POST.get(field, "").strip() for field in fields if field != "manifest"}
    if "manifest" in fields:
        data["manifest"] = request.POST.get("manifest", "").replace("\r\n", "\n")
    return data


@login_required
@needs_role
def service_create(request):
    if request.method != "POST":
        _require_manager(request)
        return render(request, "services/form.html", _form_context({"strategy": "rolling", "health_path": "/health"}))
    data = _posted(request, FIELDS)
    return form_action(request, lambda: catalog.create_service(request.user, data, request=request),
                       template="services/form.html", context=_form_context(data), conflict_status=400,
                       done=lambda service: f"Service {service.name} added to the catalog.",
                       then=lambda service: reverse("service_detail", args=[service.name]))


@login_required
@needs_role
def service_edit(request, name):
    service = _service(name)
    if request.method != "POST":
        _require_manager(request)
        values = {field: getattr(service, field) for field in FIELDS}
        return render(request, "services/form.html", _form_context(values, service))
    data = _posted(request, [f for f in FIELDS if f != "name"])  # the name is fixed: releases refer to it
    return form_action(request, lambda: catalog.update_service(request.user, service, data, request=request),
                       template="services/form.html", context=_form_context(dict(data, name=service.name), service),
                       done=f"Service {service.name} saved.", then=reverse("service_detail", args=[service.name]))


@login_required
@needs_role
def service_delete(request, name):
    service = _service(name)
    return delete_page(request, may_delete=_require_manager, confirm={
        "section": "services",
        "title": f"Remove service {service.name}?",
        "what": f"the service {service.name} and its manifest",
        "consequence": "Nothing running on a cluster changes; Gantry just stops deploying it.",
        "cancel_url": reverse("service_detail", args=[service.name]),
    }, delete=lambda: catalog.delete_service(request.user, service, request=request),
        done=(f"Service {service.name} removed.", "service_list"), back=reverse("service_detail", args=[service.name]))
