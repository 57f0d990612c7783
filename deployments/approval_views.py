"""The approvals inbox page and the navigation badge counting what waits for the user's decision."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from environments.approvals import pending_for, pending_state
from environments.backups.queries import visible_restore
from portal.errors import GantryError
from portal.live import Poll
from portal.pages import button_action, needs_role, paginate

from . import queries
from .choices import APPROVE
from .nav_views import waiting_for
from .queries import decidable_rows
from .restore_approvals import approvals_given, decide_restore, pending_restores_for, pending_restores_state


INBOX_FRAGMENT = "approvals-inbox"


@login_required
@needs_role
def approval_inbox(request):
    """Paginated in SQL: a count and one page of rows (with their approvals); the policy is asked
    about the rows of the page only. The inbox is a live fragment (portal/live.py): its version is
    three aggregate queries (deployments, environment requests, restores), so an unchanged inbox
    answers its poll 304 without listing anything."""
    inbox = queries.approval_inbox(request.user).defer("rendered_manifest", "release__notes", "service__manifest")
    waiting = queries.approval_inbox_state(inbox)
    parts = (waiting, pending_state(request.user), pending_restores_state(request.user))
    if waiting[0]:
        parts += (timezone.now().strftime("%Y-%m-%d %H:%M"),)  # "waiting 3 minutes" moves each minute
    poll = Poll(request)

    def render_inbox(tag):
        page = paginate(request, inbox, count=waiting[0])
        context = {"section": "approvals", "page": page, "inbox_version": tag,
                   "deployments": decidable_rows(request.user, page.object_list),
                   "environment_requests": pending_for(request.user),
                   "restores": pending_restores_for(request.user)}
        return render(request, "deployments/_inbox.html" if poll.is_poll else "deployments/inbox.html", context)

    if poll.wants(INBOX_FRAGMENT):
        return poll.respond(parts, render_inbox)
    return render_inbox(poll.version_for(parts, INBOX_FRAGMENT))


@login_required
@needs_role
@require_POST
def restore_decide(request, restore_id, decision):
    """Approve or reject a production restore from the inbox (restore_approvals.decide_restore: the
    deployments' rule, audited, refusals too); back to the inbox with what happened."""
    restore = visible_restore(request.user, restore_id)
    comment = request.POST.get("comment", "").strip()
    # a refusal (already audited) or a missing reason: said on the inbox
    return button_action(request, lambda: decide_restore(request.user, restore, decision, comment, request=request),
                         done=lambda decided: _restore_decided(decided, decision), back="approval_inbox",
                         refusals=(GantryError,), refused=f"Restore #{restore_id}: {{}}")


def _restore_decided(restore, decision):
    if decision == APPROVE and restore.state == "queued":
        return f"You approved restore #{restore.pk}; it is queued into {restore.destination_display}."
    if decision == APPROVE:
        return (f"You approved restore #{restore.pk}; it waits for "
                f"{restore.backup.target.environment.required_approvals - approvals_given(restore)} more approval(s).")
    return f"You rejected restore #{restore.pk}; it will not run."


@login_required
def approval_badge(request):
    """The navigation badge: how many items of the inbox wait for this user's decision (nav_views.waiting_for),
    as a small SVG image.

    An image rather than an htmx fragment: it needs no script and no trigger on every page (the
    job page, for one, promises not to poll once its job has finished).
    """
    count = waiting_for(request.user)
    width = 10 + 7 * len(str(count))
    response = render(request, "deployments/approval_badge.svg",
                      {"count": count, "width": width, "center": width / 2}, content_type="image/svg+xml")
    add_never_cache_headers(response)
    return response
