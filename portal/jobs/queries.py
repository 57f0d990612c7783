"""Which jobs a user may see (shared by the jobs pages and GET /api/v1/jobs)."""
from portal.accounts import policies
from portal.errors import Forbidden

from .models import Job


def visible_jobs(user):
    if not policies.can_view_catalog(user):
        raise Forbidden("you have no role in Gantry yet; ask an admin to grant you one")
    return policies.restrict_environments_of(user, Job.objects.select_related("environment", "requested_by"))
