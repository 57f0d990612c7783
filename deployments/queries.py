"""Queries shared by the pages and the API of releases and deployments."""
from environments.models import Environment
from portal.accounts import policies as roles
from portal.live import state_of

from . import policies
from .models import Deployment

DEPLOYMENT_RELATED = ("release__service", "release__created_by", "service", "environment", "requested_by", "job")


def visible_deployments(user):
    qs = Deployment.objects.select_related(*DEPLOYMENT_RELATED).prefetch_related("approvals__user")
    return roles.restrict_environments_of(user, qs)


def deployable_environments(user):
    """Environments where this user may request deployments (the deployer role there)."""
    envs = roles.restrict_environments(user, Environment.objects.only("slug", "name", "tier", "status"))
    envs = envs.order_by("name")
    return [env for env in envs if policies.may_request(user, env)]


def approval_inbox(user):
    """Deployments waiting for a decision `user` may give, oldest first: a queryset the page and
    GET /api/v1/approvals paginate in SQL (policies.decidable narrows it by the decision rules)."""
    return policies.decidable(user, visible_deployments(user)).order_by("requested_at", "id")


def approval_inbox_state(inbox):
    """Version parts of the inbox's deployments (portal/live.py), one aggregate query: how many wait
    for the user, their latest change and the latest approval given on them (by someone else: the
    user's own decision takes the deployment out of the inbox). The count is the inbox's length."""
    return state_of(inbox, "updated_at", "approvals__at")


def decidable_rows(user, deployments):
    """The rows of one page of the inbox that the policy lets `user` decide on, each with
    `approvals_required`, `approvals_valid` and `approvals_missing` (approvals prefetched)."""
    rows = []
    for deployment in deployments:
        approvals = list(deployment.approvals.all())
        if not policies.may_decide(user, deployment, approvals=approvals):
            continue  # decided or changed since the page's query (decidable applies the same rules)
        deployment.approvals_required = policies.approvals_required(deployment)
        deployment.approvals_valid = len(policies.valid_approvals(deployment, approvals=approvals))
        deployment.approvals_missing = max(deployment.approvals_required - deployment.approvals_valid, 0)
        rows.append(deployment)
    return rows

