"""Job kinds of backups (queue `backups`): run a backup, drill one, restore one, prune a target."""
from portal.jobs.services import JobFailed, job_kind

from . import runner
from .models import Backup, BackupTarget, Drill, Restore


def _row(model, job, what):
    row = model.objects.filter(pk=job.target_id).first()
    if row is None:
        raise JobFailed(f"the {what} was deleted before the job ran")
    return row


@job_kind("backup.run", queue="backups", title="Back up a database", resume=False)
def backup_job(job, log):
    return runner.run_backup(_row(Backup, job, "backup"), log)


@job_kind("backup.drill", queue="backups", title="Restore drill", resume=False)
def drill_job(job, log):
    return runner.run_drill(_row(Drill, job, "drill"), log)


@job_kind("backup.restore", queue="backups", title="Restore a backup", resume=False)
def restore_job(job, log):
    return runner.run_restore(_row(Restore, job, "restore"), log)


@job_kind("backup.prune", queue="backups", title="Prune expired backups")
def prune_job(job, log):
    target = _row(BackupTarget, job, "backup target")
    return {"pruned": runner.prune_target(target, log)}
