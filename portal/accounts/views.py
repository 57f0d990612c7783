"""Users and roles (admins), and each user's own API tokens."""
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.errors import Conflict, InvalidInput, NotFound, audit_conflict
from portal.pages import button_action, form_page, needs_role, refusals_as_pages, require

from . import policies, services
from .choices import ROLE_CHOICES
from .models import ApiToken, RoleAssignment, environment_model


def _users_context(values=None):
    assignments = RoleAssignment.objects.select_related("environment").order_by("environment__slug", "role")
    users = get_user_model().objects.order_by("username").prefetch_related(
        Prefetch("role_assignments", queryset=assignments, to_attr="roles"))
    return {
        "section": "users",
        "users": users,
        "roles": ROLE_CHOICES,
        "environments": environment_model().objects.only("slug", "name").order_by("slug"),
        "values": values or {},
    }


@login_required
@needs_role
def user_list(request):
    require(policies.admin_refusal(request.user, "manage users and roles"))
    return render(request, "accounts/users.html", _users_context())


@login_required
@needs_role
@require_POST
def role_grant(request):
    values = {field: request.POST.get(field, "").strip() for field in ("username", "role", "environment")}
    try:
        services.grant_role(request.user, values["username"], values["role"], values["environment"] or None,
                            request=request, password=request.POST.get("password") or None)
    except (InvalidInput, Conflict) as exc:
        if isinstance(exc, Conflict):
            audit_conflict(request, exc)
        return form_page(request, "accounts/users.html", _users_context(values), exc.messages)
    scope = f"on {values['environment']}" if values["environment"] else "globally"
    messages.success(request, f"{values['username']} has the {values['role']} role {scope}.")
    return redirect("user_list")


@login_required
@needs_role
@require_POST
def role_revoke(request, assignment_id):
    return button_action(request, lambda: services.revoke_role(request.user, assignment_id, request=request),
                         done="Role revoked.", back="user_list", refusals=(Conflict, NotFound))


# ---------------------------------------------------------------- API tokens (any signed-in user)

def _tokens_context(request, **extra):
    tokens = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True).order_by("-created_at")
    profile = getattr(request.user, "profile", None) if hasattr(request.user, "profile") else None
    current = profile.timezone if profile else ""
    zones = COMMON_ZONES if not current or current in COMMON_ZONES else (current, *COMMON_ZONES)
    return {"section": "tokens", "tokens": tokens, "zones": zones, "current_zone": current, **extra}


@login_required
def token_list(request):
    return render(request, "accounts/tokens.html", _tokens_context(request))


COMMON_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York", "America/Chicago",
                "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Singapore", "Asia/Seoul",
                "Asia/Tokyo", "Australia/Sydney")


@login_required
@require_POST
def time_zone_set(request):
    """The user's time zone for every page (their page, next to their tokens)."""
    try:
        services.set_time_zone(request.user, request.POST.get("timezone", ""), request=request)
    except InvalidInput as exc:
        return form_page(request, "accounts/tokens.html", _tokens_context(request), exc.messages)
    messages.success(request, "Time zone saved; times are shown in it from now on.")
    return redirect("token_list")


@never_cache
@login_required
@require_POST
def token_create(request):
    """The clear token is in this one response only (not cached, never stored)."""
    name = request.POST.get("name", "")
    try:
        raw = services.create_api_token(request.user, name, request=request)
    except InvalidInput as exc:
        return form_page(request, "accounts/tokens.html", _tokens_context(request, name=name), exc.messages)
    return render(request, "accounts/tokens.html", _tokens_context(request, new_token=raw, new_token_name=name.strip()))


@login_required
@require_POST
@refusals_as_pages
def token_revoke(request, token_id):
    return button_action(request, lambda: services.revoke_api_token(request.user, token_id, request=request),
                         done="Token revoked; it no longer works.", back="token_list")
