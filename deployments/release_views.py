"""Pages of releases: the list and registering a new release."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from portal.accounts import policies as roles
from portal.live import Poll, state_of
from portal.pages import form_action, needs_role, paginate, require

from . import policies
from .models import Release, Service
from .queries import deployable_environments
from .releases import register_release

TABLE_FRAGMENT = "release-table"

@login_required
@needs_role
def release_list(request):
    """Releases, newest first; the table is a live fragment (portal/live.py), so one CI registers
    shows while the page is open (version: count and newest, one aggregate). The service filter is
    applied as given."""
    service = request.GET.get("service", "").strip()
    qs = Release.objects.select_related("service", "created_by").defer("service__manifest", "notes")
    if service:
        qs = qs.filter(service__name=service)
    parts = state_of(qs, "created_at")
    poll = Poll(request)

    def render_list(tag):
        context = {"section": "deployments", "service": service, "releases_version": tag,
                   "page": paginate(request, qs.order_by("-created_at", "-id"), count=parts[0]),
                   "can_register": roles.can_register_releases(request.user),
                   "can_request": bool(deployable_environments(request.user))}
        if poll.is_poll:
            return render(request, "deployments/_releases_table.html", context)
        context["services"] = list(Service.objects.only("name").order_by("name"))
        return render(request, "deployments/releases.html", context)

    if poll.wants(TABLE_FRAGMENT):
        return poll.respond(parts, render_list)
    return render_list(poll.version_for(parts, TABLE_FRAGMENT))


RELEASE_FIELDS = ("service", "version", "image", "git_sha", "notes")


@login_required
@needs_role
def release_create(request):
    context = {"section": "deployments", "services": Service.objects.only("name").order_by("name")}
    if request.method != "POST":
        require(policies.release_refusal(request.user))
        return render(request, "deployments/release_form.html",
                      dict(context, values={"service": request.GET.get("service", "")}))
    data = {field: request.POST.get(field, "").strip() for field in RELEASE_FIELDS}
    data["notes"] = request.POST.get("notes", "").replace("\r\n", "\n").strip()
    return form_action(request, lambda: register_release(request.user, data, request=request),
                       template="deployments/release_form.html", context=dict(context, values=data),
                       done=lambda release: f"Release {release.service.name} {release.version} registered.",
                       then=lambda release: f"{reverse('release_list')}?service={release.service.name}")
