import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .kinds import kind_title


class JobState(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


# The only transitions a job may make (DESIGN rule 2). A failed job may be retried: it goes back to queued.
JOB_TRANSITIONS = {
    JobState.QUEUED: {JobState.RUNNING, JobState.CANCELLED, JobState.FAILED},
    JobState.RUNNING: {JobState.SUCCEEDED, JobState.FAILED},
    JobState.FAILED: {JobState.QUEUED},
    JobState.SUCCEEDED: set(),
    JobState.CANCELLED: set(),
}
FINISHED_STATES = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


class Job(models.Model):
    """A unit of background work. This row is the truth; the RQ job only carries its id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64, db_index=True)
    queue = models.CharField(max_length=32, default="default")
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True)
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_repr = models.CharField(max_length=255, blank=True, default="")
    environment = models.ForeignKey(
        "environments.Environment", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the job's id was last handed (or offered) to the queue. A queued job whose message is in
    # no RQ place once this is older than GANTRY_RECONCILE_GRACE_SECONDS is sent again (reconcile.py).
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]

    def __str__(self):
        return f"{self.kind} {self.target_repr}".strip()

    @property
    def title(self):
        """What the job does, in words ("Provision environment"): its kind's registered title."""
        return kind_title(self.kind)

    @property
    def is_finished(self):
        return self.state in FINISHED_STATES

    @property
    def duration(self):
        if not self.started_at:
            return None

        return (self.finished_at or timezone.now()) - self.started_at


class JobLogLine(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.message


class SchedulerLease(models.Model):
    """Which scheduler may send periodic work (scheduler.py): the holder renews it every tick; a
    standby takes it over once `expires_at` has passed (the holder died) or is empty (it stopped)."""

    name = models.CharField(max_length=32, primary_key=True)
    holder = models.CharField(max_length=255, blank=True, default="")
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name}: {self.holder or 'nobody'}"


class PeriodicRun(models.Model):
    """The last slot of one piece of periodic work that was sent, and the last that ran (scheduler.py).
    Slots are epoch seconds of the scheduled instant; a slot is sent once and runs once."""

    name = models.CharField(max_length=255, primary_key=True)
    last_sent_slot = models.BigIntegerField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_sent_by = models.CharField(max_length=255, blank=True, default="")
    last_run_slot = models.BigIntegerField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    def __str__(self):
        return self.name
