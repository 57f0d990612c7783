"""Which jobs a user may see (shared by the jobs pages and GET /api/v1/jobs)."""
import uuid

from portal.accounts import policies
from portal.errors import Forbidden, NotFound

from .models import Job


def visible_jobs(user):
    if not policies.can_view_catalog(user):
        raise Forbidden("you have no role in Gantry yet; ask an admin to grant you one")
    return policies.restrict_environments_of(user, Job.objects.select_related("environment", "requested_by"))


def visible_job(user, job_id):
    """The job `job_id` if `user` may see it; NotFound otherwise (an id that is no UUID included)."""
    try:
        uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound(f"no job '{job_id}'") from None
    job = visible_jobs(user).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"no job '{job_id}'")
    return job
