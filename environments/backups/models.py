"""Backup targets, backups, restore drills and restores.

Secrets (the DSN, S3 credentials) are encrypted at rest with portal.crypto and never shown back.
States change only through `services.set_state` (one writer, audited, transition table in choices).
"""
import json

from django.conf import settings
from django.db import models

from portal import crypto

from .choices import DEPLOY_GUARD_CHOICES, TRIGGER_CHOICES, BackupState, DrillState, RestoreState


class BackupTarget(models.Model):
    """A database of an environment Gantry backs up, where to, how often, and for how long."""

    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="backup_targets")
    name = models.SlugField(max_length=63)
    kind = models.CharField(max_length=16, default="postgresql")
    dsn_encrypted = models.TextField()
    dsn_display = models.CharField(max_length=300, blank=True, default="", help_text="user@host:port/db, no password")
    schedule = models.CharField(max_length=100, default="0 3 * * *")
    timezone = models.CharField(max_length=64, default="UTC")
    retention_days = models.PositiveIntegerField(default=7)
    keep_last = models.PositiveIntegerField(default=1)
    destination = models.JSONField(default=dict, help_text="kind, path or bucket/prefix/endpoint_url/region (no secrets)")
    credentials_encrypted = models.TextField(blank=True, default="")
    rpo_minutes = models.PositiveIntegerField(default=1440)
    rto_minutes = models.PositiveIntegerField(default=240)
    verify_schedule = models.CharField(max_length=100, blank=True, default="")
    verify_sql = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Protection rule: a deployment to the environment needs a backup newer than this many minutes.
    deploy_guard = models.CharField(max_length=8, choices=DEPLOY_GUARD_CHOICES, default="off")
    deploy_guard_minutes = models.PositiveIntegerField(default=60)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The scheduler's bookmarks: the last cron occurrence it started a backup / a drill for.
    last_scheduled_for = models.DateTimeField(null=True, blank=True)
    last_drill_scheduled_for = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["environment__name", "name"]
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="unique_backup_target_name")]

    def __str__(self):
        return f"{self.environment.slug}/{self.name}"

    @property
    def dsn(self):
        return crypto.decrypt(self.dsn_encrypted)

    @dsn.setter
    def dsn(self, value):
        self.dsn_encrypted = crypto.encrypt(value)

    @property
    def credentials(self):
        text = crypto.decrypt(self.credentials_encrypted)
        return json.loads(text) if text else {}

    @credentials.setter
    def credentials(self, value):
        self.credentials_encrypted = crypto.encrypt(json.dumps(value)) if value else ""

    @property
    def prefix(self):
        prefix = (self.destination.get("prefix") or "").strip("/")
        return f"{prefix}/{self.environment.slug}/{self.name}/" if prefix else f"{self.environment.slug}/{self.name}/"


class JobRun(models.Model):
    """What a backup, a drill and a restore share: who asked, the job that runs it, when it ran, its error."""

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class Backup(JobRun):
    target = models.ForeignKey(BackupTarget, on_delete=models.CASCADE, related_name="backups")
    state = models.CharField(max_length=16, choices=BackupState.CHOICES, default=BackupState.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=TRIGGER_CHOICES, default="manual")
    key = models.CharField(max_length=500, blank=True, default="")
    location = models.CharField(max_length=700, blank=True, default="")
    upload_ref = models.CharField(max_length=700, blank=True, default="",
                                  help_text="the multipart upload id or temporary file while running")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    server_version = models.CharField(max_length=32, blank=True, default="")
    row_counts = models.JSONField(default=dict, blank=True,
                                  help_text='{"schema.table": rows} counted in the dump\'s own snapshot')
    pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta(JobRun.Meta):
        indexes = [models.Index(fields=["target", "state", "finished_at"])]

    def __str__(self):
        return f"backup #{self.pk} of {self.target}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def who(self):
        if self.requested_by_id:
            return self.requested_by.get_username()
        return {"schedule": "the schedule", "deployment": "a deployment's protection rule"}.get(self.trigger,
                                                                                                self.trigger)


class Drill(JobRun):
    """A restore drill: the backup restored into a scratch database, checked, timed, dropped."""

    backup = models.ForeignKey(Backup, on_delete=models.CASCADE, related_name="drills")
    state = models.CharField(max_length=16, choices=DrillState.CHOICES, default=DrillState.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=TRIGGER_CHOICES, default="manual")
    scratch_database = models.CharField(max_length=63, blank=True, default="")
    restore_seconds = models.FloatField(null=True, blank=True)
    checks = models.JSONField(default=list, blank=True)

    def __str__(self):
        return f"drill #{self.pk} of backup #{self.backup_id}"


class Restore(JobRun):
    """A backup restored into a new named database on the target's server, or into a given DSN."""

    backup = models.ForeignKey(Backup, on_delete=models.PROTECT, related_name="restores")
    state = models.CharField(max_length=20, choices=RestoreState.CHOICES, default=RestoreState.QUEUED, db_index=True)
    database = models.CharField(max_length=63, blank=True, default="")
    dsn_encrypted = models.TextField(blank=True, default="")
    destination_display = models.CharField(max_length=300, blank=True, default="")
    allow_existing = models.BooleanField(default=False)
    approvals = models.JSONField(default=list, blank=True, help_text="[{user, decision, comment, at}]")
    restore_seconds = models.FloatField(null=True, blank=True)

    def __str__(self):
        return f"restore #{self.pk} of backup #{self.backup_id} into {self.destination_display}"

    @property
    def dsn(self):
        return crypto.decrypt(self.dsn_encrypted)

    @dsn.setter
    def dsn(self, value):
        self.dsn_encrypted = crypto.encrypt(value or "")
