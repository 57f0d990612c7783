"""The dashboard: every environment the user may see, by tier, and the service catalog."""
from django.contrib.auth.decorators import login_required

from deployments.models import Service
from deployments.monitoring.board import shown_environments
from deployments.monitoring.views import board_context, render_board
from environments.choices import TIERS_IN_ORDER
from environments.models import Environment
from portal.accounts import policies
from portal.pages import needs_role


@login_required
@needs_role
def dashboard(request):
    environments = shown_environments(request.user, Environment.objects.select_related("cluster", "owner").only(
        "id", "slug", "name", "tier", "team", "status", "namespace", "cluster__name", "owner__username"))
    groups = [(tier, [env for env in environments if env.tier == tier]) for tier in TIERS_IN_ORDER]
    services = list(Service.objects.only("name", "team", "strategy").order_by("name"))

    context = board_context(request, environments, services)
    return render_board(request, "dashboard.html", context | {
        "section": "dashboard",
        "groups": groups,
        "environment_count": len(environments),
        "services": services,
        "can_manage_services": policies.can_manage_services(request.user),
    }, context["board"])
