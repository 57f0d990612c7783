"""Periodic work of backups, run by the scheduler (`manage.py scheduler`) on a worker.

`tick` starts the backups and drills whose cron occurrence has come (in each target's time zone)
and queues a prune job for each target with expired backups; `fail_interrupted` cleans up after
workers that died mid-backup (aborting their uploads). Both take `now` so tests control the clock.
"""
import contextlib

from django.db import transaction
from django.utils import timezone

from portal.errors import Conflict
from portal.jobs.models import Job, JobState
from portal.jobs.services import enqueue_job

from . import policies, services
from .choices import BackupState
from .models import Backup, BackupTarget
from .runner import fail_interrupted  # noqa: F401  (a period, by this module's name: PERIODIC)
from .schedule import due

# Collected by portal.jobs.periodic (the scheduler).
PERIODIC = [
    ("environments.backups.periodic.tick", "default", {"interval": 60}),
    ("environments.backups.periodic.fail_interrupted", "default", {"interval": 30}),
]


def tick(now=None):
    now = now or timezone.now()
    started = {"backups": [], "drills": [], "prunes": []}
    in_use = services.in_use_backup_ids()
    for target in BackupTarget.objects.filter(enabled=True).select_related("environment"):
        occurrence = due(target.schedule, target.timezone, now, target.last_scheduled_for, target.created_at)
        if occurrence is not None:
            BackupTarget.objects.filter(pk=target.pk).update(last_scheduled_for=occurrence)
            with contextlib.suppress(Conflict):  # one is running already; that one counts for this occurrence
                started["backups"].append(services.start_backup(target, trigger="schedule").pk)
        if target.verify_schedule:
            occurrence = due(target.verify_schedule, target.timezone, now, target.last_drill_scheduled_for,
                             target.created_at)
            if occurrence is not None:
                BackupTarget.objects.filter(pk=target.pk).update(last_drill_scheduled_for=occurrence)
                good = services.last_good_backup(target)
                if good is not None:
                    started["drills"].append(services.start_drill(good, trigger="schedule").pk)
        backups = list(Backup.objects.filter(target=target, state__in=(BackupState.SUCCEEDED, BackupState.FAILED)))
        prune_pending = Job.objects.filter(kind="backup.prune", target_id=str(target.pk),
                                           state__in=(JobState.QUEUED, JobState.RUNNING))
        if policies.prunable(target, backups, now, in_use) and not prune_pending.exists():
            with transaction.atomic():
                started["prunes"].append(str(enqueue_job("backup.prune", target=target,
                                                         environment=target.environment).pk))
    return started
