"""Queries shared by the pages and the API of releases and deployments."""
from environments.models import Environment
from portal.accounts import policies as roles

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
