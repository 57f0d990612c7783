"""States of backups, drills and restores, and the only transitions each may make (DESIGN rule 2)."""


class BackupState:
    QUEUED, RUNNING, SUCCEEDED, FAILED, PRUNED = "queued", "running", "succeeded", "failed", "pruned"
    CHOICES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED, PRUNED)]
    ACTIVE = {QUEUED, RUNNING}


BACKUP_TRANSITIONS = {
    BackupState.QUEUED: {BackupState.RUNNING, BackupState.FAILED},
    BackupState.RUNNING: {BackupState.SUCCEEDED, BackupState.FAILED},
    BackupState.SUCCEEDED: {BackupState.PRUNED},
    BackupState.FAILED: {BackupState.PRUNED},
    BackupState.PRUNED: set(),
}


class DrillState:
    QUEUED, RUNNING, PASSED, FAILED = "queued", "running", "passed", "failed"
    CHOICES = [(s, s) for s in (QUEUED, RUNNING, PASSED, FAILED)]
    ACTIVE = {QUEUED, RUNNING}


DRILL_TRANSITIONS = {
    DrillState.QUEUED: {DrillState.RUNNING, DrillState.FAILED},
    DrillState.RUNNING: {DrillState.PASSED, DrillState.FAILED},
    DrillState.PASSED: set(),
    DrillState.FAILED: set(),
}


class RestoreState:
    PENDING_APPROVAL, QUEUED, RUNNING, SUCCEEDED, FAILED, REJECTED = (
        "pending_approval", "queued", "running", "succeeded", "failed", "rejected")
    CHOICES = [(s, s) for s in (PENDING_APPROVAL, QUEUED, RUNNING, SUCCEEDED, FAILED, REJECTED)]
    ACTIVE = {PENDING_APPROVAL, QUEUED, RUNNING}


RESTORE_TRANSITIONS = {
    RestoreState.PENDING_APPROVAL: {RestoreState.QUEUED, RestoreState.REJECTED},
    RestoreState.QUEUED: {RestoreState.RUNNING, RestoreState.FAILED},
    RestoreState.RUNNING: {RestoreState.SUCCEEDED, RestoreState.FAILED},
    RestoreState.SUCCEEDED: set(),
    RestoreState.FAILED: set(),
    RestoreState.REJECTED: set(),
}

TRIGGER_CHOICES = [("manual", "manual"), ("schedule", "schedule"), ("deployment", "before a deployment"),
                   ("demo", "demo")]

# What a deployment to the environment does when its last good backup is older than the guard's minutes.
DEPLOY_GUARD_CHOICES = [("off", "off"), ("take", "take one first"), ("refuse", "refuse the deployment")]
DEPLOY_GUARDS = tuple(value for value, _ in DEPLOY_GUARD_CHOICES)
