"""The approvals inbox page and the navigation badge counting what waits for the user's decision."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from portal.accounts import policies as roles
from portal.views import needs_role, paginate

from . import policies
from .queries import visible_deployments


def _inbox(user):
    """Deployments waiting for a decision this user may give, oldest first, with what they still need.

    Three queries whatever the number: the deployments (narrowed in SQL by policies.decidable),
    and their approvals with the approvers; the policy has the final word on each.
    """
    pending = (policies.decidable(user, visible_deployments(user))
               .defer("rendered_manifest", "release__notes", "service__manifest")
               .order_by("requested_at", "id"))
    items = []
    for deployment in pending:
        approvals = list(deployment.approvals.all())
        if not policies.may_decide(user, deployment, approvals=approvals):
            continue
        deployment.approvals_required = policies.approvals_required(deployment)
        deployment.approvals_valid = len(policies.valid_approvals(deployment, approvals=approvals))
        deployment.approvals_missing = max(deployment.approvals_required - deployment.approvals_valid, 0)
        items.append(deployment)
    return items


@login_required
@needs_role
def approval_inbox(request):
    from environments.approvals import pending_for

    page = paginate(request, _inbox(request.user))
    return render(request, "deployments/inbox.html", {"section": "approvals", "page": page,
                                                      "deployments": page.object_list,
                                                      "environment_requests": pending_for(request.user)})


@login_required
def approval_badge(request):
    """The navigation badge: how many deployments wait for this user's decision, as a small SVG image.

    An image rather than an htmx fragment: it needs no script and no trigger on every page (the
    job page, for one, promises not to poll once its job has finished).
    """
    count = policies.count_decidable(user=request.user, queryset=visible_deployments(request.user)) \
        if roles.has_any_role(request.user) else 0
    width = 10 + 7 * len(str(count))
    response = render(request, "deployments/approval_badge.svg",
                      {"count": count, "width": width, "center": width / 2}, content_type="image/svg+xml")
    add_never_cache_headers(response)
    return response
