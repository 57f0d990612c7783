"""The approvals inbox page and the navigation badge counting what waits for the user's decision."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from environments.approvals import pending_for
from portal.accounts import policies as roles
from portal.pages import needs_role, paginate

from . import policies, queries
from .queries import decidable_rows, visible_deployments


@login_required
@needs_role
def approval_inbox(request):
    """Paginated in SQL: a count and one page of rows (with their approvals); the policy is asked
    about the rows of the page only."""
    inbox = queries.approval_inbox(request.user).defer("rendered_manifest", "release__notes", "service__manifest")
    page = paginate(request, inbox)
    return render(request, "deployments/inbox.html", {"section": "approvals", "page": page,
                                                      "deployments": decidable_rows(request.user, page.object_list),
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
