"""The rules of backups: who may do what, what may be pruned, how fresh is fresh enough.

Pages, the API, jobs and the scheduler all ask these functions (DESIGN rule 1).
"""
from datetime import timedelta

from portal.accounts import policies as roles

from .choices import BackupState
from .schedule import longest_gap_minutes


def may_manage(user, environment):
    """Adding targets, starting backups and drills, restoring: an admin of the environment."""
    return roles.has_role(user, roles.ADMIN, environment)


def manage_refusal(user, environment, what="manage backups"):
    if not may_manage(user, environment):
        return f"you need the admin role for {environment.slug} to {what}"
    return None


def may_view(user, environment):
    return roles.can_view_environment(user, environment) and roles.has_any_role(user)


def restore_needs_approval(environment):
    """Production restores go through the environment's approvals, like its deployments."""
    return environment.tier == "production" and environment.required_approvals > 0


def schedule_warning(schedule, timezone_name, rpo_minutes):
    """A sentence when the schedule leaves gaps longer than the RPO (accepted, but shown), else None."""
    gap = longest_gap_minutes(schedule, timezone_name)
    if gap is not None and gap > rpo_minutes:
        return (f"the schedule '{schedule}' leaves up to {_minutes(gap)} between backups, more than the RPO of "
                f"{_minutes(rpo_minutes)}: a failure just before a backup would lose more data than the objective allows")
    return None


def _minutes(value):
    value = int(value)
    if value % 1440 == 0:
        return f"{value // 1440} day{'s' if value != 1440 else ''}"
    if value % 60 == 0:
        return f"{value // 60} hour{'s' if value != 60 else ''}"
    return f"{value} minute{'s' if value != 1 else ''}"


def rpo_color(last_good_at, rpo_minutes, now):
    """green: the newest good backup is within the RPO; amber: within twice the RPO; red: older, or none."""
    if last_good_at is None:
        return "red"
    age = now - last_good_at
    if age <= timedelta(minutes=rpo_minutes):
        return "green"
    if age <= timedelta(minutes=2 * rpo_minutes):
        return "amber"
    return "red"


def rto_met(restore_seconds, rto_minutes):
    return restore_seconds is not None and restore_seconds <= rto_minutes * 60


def prunable(target, backups, now, in_use_ids):
    """Which of a target's backups retention removes now.

    Expired: finished more than `retention_days` ago. Never the newest `keep_last` good backups
    (at least one: the newest good backup is always kept), never one a drill or restore is using,
    never one still running."""
    keep = max(1, target.keep_last)
    good = sorted((b for b in backups if b.state == BackupState.SUCCEEDED), key=lambda b: (b.finished_at, b.pk),
                  reverse=True)
    protected = {b.pk for b in good[:keep]} | set(in_use_ids)
    cutoff = now - timedelta(days=target.retention_days)
    return [b for b in backups
            if b.state in (BackupState.SUCCEEDED, BackupState.FAILED) and b.pk not in protected
            and (b.finished_at or b.created_at) < cutoff]


def deploy_guard_blocker(target, last_good_at, now):
    """Why a deployment may not go ahead under the target's "backup newer than N minutes" rule, or None."""
    if target.deploy_guard == "off":
        return None
    if last_good_at is not None and now - last_good_at <= timedelta(minutes=target.deploy_guard_minutes):
        return None
    age = "there is no good backup" if last_good_at is None else \
        f"the newest good backup is {_minutes((now - last_good_at).total_seconds() // 60)} old"
    return (f"{target.environment.slug} requires a backup of {target.name} newer than "
            f"{_minutes(target.deploy_guard_minutes)} before deploying, and {age}")
