"""Pages of self-service environments: the create form (checked as you type), the provisioning
page, approving or rejecting a request, extending, and the template admin pages. Views parse
input, call environments.self_service / approvals / expiry, and render; they hold no rule."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal.errors import Conflict, InvalidInput
from portal.views import needs_role

from . import approvals, expiry
from .views import _visible_environment


def _back(request, env):
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect("environment_detail", slug=env.slug)


@login_required
@needs_role
@require_POST
def environment_decide(request, slug, decision):
    env = _visible_environment(request, slug)
    try:
        env, _ = approvals.decide(request.user, env, decision, comment=request.POST.get("comment", ""), request=request)
    except (InvalidInput, Conflict) as exc:
        messages.error(request, "; ".join(exc.messages))
        return _back(request, env)
    word = "approved" if decision == approvals.APPROVE else "rejected"
    messages.success(request, f"You {word} the request for {env.name}; it is now {env.status}.")
    return _back(request, env)


@login_required
@needs_role
@require_POST
def environment_extend(request, slug):
    env = _visible_environment(request, slug)
    try:
        hours = int(request.POST.get("hours", ""))
    except ValueError:
        messages.error(request, "hours: a whole number of hours")
        return _back(request, env)
    try:
        env = expiry.extend_environment(request.user, env, hours, request=request)
    except (InvalidInput, Conflict) as exc:
        messages.error(request, "; ".join(exc.messages))
        return _back(request, env)
    messages.success(request, f"{env.name} now expires {env.expires_at:%Y-%m-%d %H:%M %Z}.")
    return _back(request, env)
