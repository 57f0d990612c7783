ROLLING = "rolling"
BLUE_GREEN = "blue-green"
STRATEGY_CHOICES = [(ROLLING, "rolling"), (BLUE_GREEN, "blue-green")]


class DeploymentState:
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"
    ALL = [PENDING_APPROVAL, APPROVED, QUEUED, RUNNING, SUCCEEDED, FAILED, REJECTED, CANCELLED, ROLLED_BACK]
    CHOICES = [(s, s.replace("_", " ")) for s in ALL]
    OPEN = {PENDING_APPROVAL, APPROVED, QUEUED}
    FINISHED = {SUCCEEDED, FAILED, REJECTED, CANCELLED, ROLLED_BACK}


S = DeploymentState
# The deployment state machine (API.md), with one extension: approved -> pending_approval when
# what was approved (image or rendered manifests) changed before the deployment started.
DEPLOYMENT_TRANSITIONS = {
    S.PENDING_APPROVAL: {S.APPROVED, S.REJECTED, S.CANCELLED},
    S.APPROVED: {S.QUEUED, S.CANCELLED, S.PENDING_APPROVAL},
    S.QUEUED: {S.RUNNING, S.CANCELLED},
    S.RUNNING: {S.SUCCEEDED, S.FAILED},
    S.SUCCEEDED: {S.ROLLED_BACK},
    S.FAILED: set(),
    S.REJECTED: set(),
    S.CANCELLED: set(),
    S.ROLLED_BACK: set(),
}

DEPLOY = "deploy"
ROLLBACK = "rollback"
KIND_CHOICES = [(DEPLOY, "deploy"), (ROLLBACK, "rollback")]

APPROVE = "approve"
REJECT = "reject"
DECISION_CHOICES = [(APPROVE, "approve"), (REJECT, "reject")]
