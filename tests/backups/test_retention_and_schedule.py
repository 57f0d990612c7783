"""Retention deletes expired objects with their rows (never the newest good backup nor one in use);
schedules run in the target's time zone on a controlled clock."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from environments.backups import periodic
from environments.backups.models import Backup, Drill
from environments.backups.runner import prune_target
from environments.backups.services import start_backup
from portal.audit.models import AuditEvent
from portal.jobs.models import Job
from portal.jobs.services import JobLog, run_job
from portal.storage import LocalStore

from .conftest import run_jobs_of

pytestmark = pytest.mark.django_db

UTC = dt_timezone.utc
NOW = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)


def backed_up(admin, target, days_ago):
    backup = run_jobs_of(start_backup(target, user=admin))
    assert backup.state == "succeeded", backup.error
    Backup.objects.filter(pk=backup.pk).update(finished_at=NOW - timedelta(days=days_ago))
    return Backup.objects.get(pk=backup.pk)


def test_retention_prunes_expired_backups_but_never_the_newest_good_one_or_one_in_use(admin, staging, source_db,
                                                                                       make_target, tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)}, retention_days=7)
    oldest = backed_up(admin, target, days_ago=12)
    in_use = backed_up(admin, target, days_ago=11)
    newest = backed_up(admin, target, days_ago=9)  # expired too, but the newest good backup
    Drill.objects.create(backup=in_use, state="running")  # a drill reads it right now
    store = LocalStore(str(tmp_path))
    assert len(store.list()) == 3

    job = Job.objects.create(kind="backup.prune", target_id=str(target.pk))
    assert prune_target(target, JobLog(job), now=NOW) == 1

    states = dict(Backup.objects.values_list("pk", "state"))
    assert states == {oldest.pk: "pruned", in_use.pk: "succeeded", newest.pk: "succeeded"}
    assert [key for key, _ in store.list()] == sorted([in_use.key, newest.key])
    event = AuditEvent.objects.get(action="backup.pruned")
    assert (event.actor, event.target_id, event.environment) == ("gantry-retention", str(oldest.pk), "staging")
    assert event.detail["location"] == oldest.location and event.detail["retention_days"] == 7


def test_keep_last_keeps_that_many_good_backups(admin, staging, source_db, make_target, tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)}, retention_days=1, keep_last=2)
    first, second, third = (backed_up(admin, target, days_ago=d) for d in (5, 4, 3))
    job = Job.objects.create(kind="backup.prune", target_id=str(target.pk))
    assert prune_target(target, JobLog(job), now=NOW) == 1
    assert Backup.objects.get(pk=first.pk).state == "pruned"
    assert {Backup.objects.get(pk=b.pk).state for b in (second, third)} == {"succeeded"}
    assert AuditEvent.objects.filter(action="backup.pruned").count() == 1


def test_the_scheduler_queues_a_prune_job_that_runs_on_the_backups_queue(admin, staging, source_db, make_target,
                                                                         tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)}, retention_days=7,
                         schedule="0 3 1 1 *")
    backed_up(admin, target, days_ago=30)
    backed_up(admin, target, days_ago=1)

    started = periodic.tick(now=NOW)

    assert started["backups"] == [] and len(started["prunes"]) == 1
    job = Job.objects.get(pk=started["prunes"][0])
    assert (job.kind, job.queue) == ("backup.prune", "backups")
    assert periodic.tick(now=NOW)["prunes"] == []  # one prune job at a time
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.state == "succeeded" and job.result == {"pruned": 1}
    assert any(line.startswith("pruned backup #") for line in job.log_lines.values_list("message", flat=True))


def test_a_daily_schedule_runs_once_at_three_in_the_targets_time_zone(admin, staging, source_db, make_target,
                                                                      tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)}, schedule="0 3 * * *",
                         timezone="Asia/Seoul", verify_schedule="30 4 * * *")
    type(target).objects.filter(pk=target.pk).update(created_at=datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    # 03:00 in Seoul is 18:00 UTC the day before.
    assert periodic.tick(now=datetime(2026, 12, 1, 17, 59, tzinfo=UTC))["backups"] == []
    started = periodic.tick(now=datetime(2026, 12, 1, 18, 0, 30, tzinfo=UTC))
    assert len(started["backups"]) == 1
    backup = Backup.objects.get(pk=started["backups"][0])
    assert (backup.trigger, backup.requested_by, backup.who) == ("schedule", None, "the schedule")
    assert periodic.tick(now=datetime(2026, 12, 1, 18, 20, tzinfo=UTC))["backups"] == []  # same occurrence
    backup = run_jobs_of(backup)
    assert backup.state == "succeeded", backup.error

    # 04:30 Seoul: the drill schedule picks the newest good backup.
    drills = periodic.tick(now=datetime(2026, 12, 1, 19, 30, tzinfo=UTC))["drills"]
    assert len(drills) == 1 and Drill.objects.get(pk=drills[0]).backup_id == backup.pk

    # A day without ticks is not caught up twice: only the latest occurrence runs.
    started = periodic.tick(now=datetime(2026, 12, 3, 18, 5, tzinfo=UTC))
    assert len(started["backups"]) == 1
    assert Backup.objects.filter(trigger="schedule").count() == 2


def test_a_disabled_target_is_not_scheduled(admin, staging, source_db, make_target, tmp_path):
    target = make_target(staging, source_db, {"kind": "local", "path": str(tmp_path)}, schedule="* * * * *",
                         enabled=False)
    type(target).objects.filter(pk=target.pk).update(created_at=NOW - timedelta(days=1))
    assert periodic.tick(now=NOW)["backups"] == []
