"""The navigation's approvals badge: a live fragment (portal/live.py) on every page.

It counts what the approvals inbox lists for this user: deployments waiting for their decision
(`policies.count_decidable`), environment requests (`environments.approvals.pending_for`) and
production restores (`restore_approvals.pending_restores_for`), each with the rule the inbox uses, and
is polled like any live fragment: 304 while the count stays.
"""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from portal.accounts import policies as roles
from portal.live import Poll

from environments.approvals import pending_for

from . import policies
from .queries import visible_deployments
from .restore_approvals import pending_restores_for


def waiting_for(user):
    """How many items of the approvals inbox wait for `user`'s decision (the badge, page and SVG)."""
    if not roles.has_any_role(user):
        return 0
    return (policies.count_decidable(user=user, queryset=visible_deployments(user))
            + len(pending_for(user)) + len(pending_restores_for(user)))


@login_required
def approval_count(request):
    """The badge's fragment (`#nav-approvals`), or, to a plain GET, the same as a tiny page of its own."""
    count = waiting_for(request.user)
    return Poll(request).respond((count,), lambda tag: render(
        request, "deployments/_nav_approvals.html", {"count": count, "approvals_version": tag}),
        fragment_id="nav-approvals")
