"""Taking an environment down: the teardown its deletion starts (by its owner or an admin, or once a
protected deletion is approved, environments.approvals), the reaper that starts it when a time to live
runs out, and the end of it when the namespace is gone."""
from django.db import transaction
from django.utils import timezone

from portal.audit.services import record
from portal.errors import Conflict
from portal.jobs.services import enqueue_job

from .choices import EnvironmentStatus
from .models import Environment
from .status import TransitionError, set_environment_status


def expire_environments(now=None):
    """Periodic (the reaper): tear down environments whose time to live ran out. Never touches one
    without a TTL; one with a deployment under way waits for the next round."""
    now = now or timezone.now()
    expired = 0
    due = (Environment.objects.filter(expires_at__lte=now, ttl_hours__isnull=False)
           .exclude(status__in=(EnvironmentStatus.DELETING, *EnvironmentStatus.GONE)).only("pk", "ttl_hours"))
    for env in due:
        try:
            tear_down(env, actor=None, action="environment.expired", reason=f"its time to live ({env.ttl_hours} h) ran out")
            expired += 1
        except Conflict:
            continue  # a deployment is under way; the next round tries again
    return expired


def tear_down(env, *, actor, action, request=None, reason=""):
    """Start taking `env` down (it shows `deleting`; its teardown job removes the namespace), audited as
    `action`. Refused while a deployment is approved, queued or running there. Returns the job, or None
    when there is no cluster (then it is `deleted` at once)."""
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=env.pk)  # deployments start under this lock too
        active = env.deployments.filter(state__in=["approved", "queued", "running"]).count()
        if active:
            raise Conflict(f"environment '{env.slug}' has {active} deployment(s) approved, queued or running; "
                           "cancel them or let them finish first")
        if env.status == EnvironmentStatus.DELETING or env.status in EnvironmentStatus.GONE:
            raise TransitionError(f"environment '{env.slug}' is already {env.status}")
        detail = {"reason": reason} if reason else None
        record(action, actor=actor, actor_name=None if actor else "gantry-scheduler", request=request, target=env,
               detail=detail)
        set_environment_status(env, EnvironmentStatus.DELETING, actor=actor, actor_name="gantry-scheduler",
                               request=request)
        if env.cluster_id is None:
            set_environment_status(env, EnvironmentStatus.DELETED, actor=actor, actor_name="gantry-scheduler",
                                   request=request, reason="it has no cluster; nothing to remove")
            return None
        return enqueue_job("environment.teardown", target=env, environment=env, requested_by=actor, request=request)


def finish_teardown(env):
    """The teardown job saw the namespace gone: the environment is marked `deleted` (kept, audited)."""
    env = Environment.objects.filter(pk=env.pk).first()
    if env is None or env.status == EnvironmentStatus.DELETED:
        return
    set_environment_status(env, EnvironmentStatus.DELETED, reason="its namespace is gone")
