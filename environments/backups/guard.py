"""The protection rule "a backup newer than N minutes before deploying", applied by the deploy job.

Per backup target of the environment whose `deploy_guard` is on: a good backup finished within
`deploy_guard_minutes` lets the deployment go on. Otherwise `take` backs the database up right
there, inside the deployment's job and logged in it (a failed backup fails the deployment), and
`refuse` fails the deployment with the reason. Rollbacks are not held: they return to a state
that was already running.
"""
from django.db import transaction
from django.utils import timezone

from portal.audit.services import record
from portal.errors import Conflict
from portal.jobs.services import JobFailed

from . import policies, services
from .choices import BackupState
from .models import Backup, BackupTarget
from .runner import run_backup


def backup_before_deploy(environment, log, now=None):
    """None when the deployment may go on; otherwise the sentence that refuses it."""

    for target in BackupTarget.objects.filter(environment=environment, enabled=True).exclude(deploy_guard="off") \
            .select_related("environment"):
        now = now or timezone.now()
        last = services.last_good_backup(target)
        blocker = policies.deploy_guard_blocker(target, last.finished_at if last else None, now)
        if blocker is None:
            log(f"backup rule: {target.name} has a good backup from {last.finished_at:%Y-%m-%d %H:%M %Z} "
                f"(newer than {target.deploy_guard_minutes} min)")
            continue
        if target.deploy_guard == "refuse":
            return f"{blocker}: back it up (Backups page or POST /api/v1/environments/{environment.slug}/backups), " \
                   "then deploy again"
        log(f"backup rule: {blocker}; backing it up now, before deploying")
        try:
            backup = _queue_backup_for_deployment(target, getattr(log, "job", None))
        except Conflict as exc:
            return f"{blocker}, and a backup cannot start now ({exc}); deploy again when it has finished"
        try:
            run_backup(backup, log)
        except JobFailed as exc:
            return f"the backup the rule requires failed: {exc}"
        log(f"backup rule: backup #{backup.pk} of {target.name} done; deploying")
    return None


def _queue_backup_for_deployment(target, job):
    with transaction.atomic():
        BackupTarget.objects.select_for_update().filter(pk=target.pk).first()
        running = Backup.objects.filter(target=target, state__in=BackupState.ACTIVE).first()
        if running is not None:
            raise Conflict(f"backup #{running.pk} is {running.state}")
        backup = Backup.objects.create(target=target, trigger="deployment", job=job)
        record("backup.queued", actor_name="gantry-worker", target=backup, environment=target.environment,
               detail={"trigger": "deployment", "target": target.name})
    return backup
