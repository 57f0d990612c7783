"""The navigation's approvals badge: a live fragment (portal/live.py) on every page.

It counts the deployments waiting for this user's decision, with the same policy the approvals inbox
uses (`policies.count_decidable`), and is polled like any live fragment: 304 while the count stays.
"""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from portal.accounts import policies as roles
from portal.live import Poll

from . import policies
from .queries import visible_deployments


def waiting_for(user):
    if not roles.has_any_role(user):
        return 0
    return policies.count_decidable(user=user, queryset=visible_deployments(user))


@login_required
def approval_count(request):
    """The badge's fragment (`#nav-approvals`), or, to a plain GET, the same as a tiny page of its own."""
    count = waiting_for(request.user)
    return Poll(request).respond((count,), lambda tag: render(
        request, "deployments/_nav_approvals.html", {"count": count, "approvals_version": tag}),
        fragment_id="nav-approvals")
