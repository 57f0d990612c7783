from django.db import models


class AuditEvent(models.Model):
    """One append-only entry of the audit chain.

    `hash` is SHA-256 over the event's canonical content including `prev_hash`, so changing or
    removing a row breaks the chain at that row. The actor is kept as a name and an id rather
    than a foreign key: the record must outlive the user, and a cascade would be an UPDATE.
    """

    OUTCOME_CHOICES = [("success", "success"), ("denied", "denied"), ("failure", "failure")]

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField(db_index=True)
    # actor, outcome and environment are found through the composite (field, -seq) indexes below,
    # which also give the keyset order; a plain index on the field alone would only tempt the
    # planner into bitmap scans and sorts
    actor = models.CharField(max_length=150)
    actor_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=10, choices=OUTCOME_CHOICES, default="success")
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_repr = models.CharField(max_length=255, blank=True, default="")
    environment = models.CharField(max_length=64, blank=True, default="")
    ip = models.CharField(max_length=45, blank=True, default="")
    changes = models.JSONField(default=dict, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=16, blank=True, default="",
                              help_text="Fingerprint of the GANTRY_AUDIT_KEY whose HMAC is `hash` (empty: plain SHA-256).")

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["environment", "-seq"]), models.Index(fields=["actor", "-seq"]),
                   # the events of one object (an evidence pack, links from the log)
                   models.Index(fields=["target_type", "target_id", "seq"], name="audit_target_seq"),
                   # keyset pages of the log filtered by action or outcome, newest first
                   models.Index(fields=["action", "-seq"], name="audit_action_seq"),
                   models.Index(fields=["outcome", "-seq"], name="audit_outcome_seq"),
                   # job events a person caused: what is left of job.* once Gantry's own are hidden
                   models.Index(fields=["-seq"], name="audit_person_job_seq",
                                condition=models.Q(action__startswith="job.", actor_id__isnull=False))]

    def __str__(self):
        return f"#{self.seq} {self.actor} {self.action} {self.outcome}"

    @property
    def target(self):
        if not self.target_type:
            return ""
        return f"{self.target_type}:{self.target_repr or self.target_id}"


class ArchiveSegment(models.Model):
    """A run of audit events moved to the archive: where, and the chain checkpoint that vouches for it.

    `first_prev_hash` is what the first archived event follows and `last_hash` what the next event
    (archived later, or still in the table) must follow; `sha256` is the segment file's digest."""

    first_seq = models.BigIntegerField(unique=True)
    last_seq = models.BigIntegerField(unique=True)
    count = models.PositiveIntegerField()
    first_prev_hash = models.CharField(max_length=64)
    last_hash = models.CharField(max_length=64)
    first_at = models.CharField(max_length=40)
    last_at = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    store = models.CharField(max_length=16, default="local")
    location = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["first_seq"]

    def __str__(self):
        return f"audit events #{self.first_seq}-#{self.last_seq} at {self.location}"
