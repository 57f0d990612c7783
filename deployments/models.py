from django.db import models

from .choices import DECISION_CHOICES, KIND_CHOICES, ROLLING, STRATEGY_CHOICES, DeploymentState


class Service(models.Model):
    """A deployable service of the catalog and its manifest template (see API.md, Manifests)."""

    name = models.SlugField(max_length=63, unique=True)
    team = models.CharField(max_length=100, blank=True, default="")
    description = models.TextField(blank=True, default="")
    manifest = models.TextField()
    strategy = models.CharField(max_length=16, choices=STRATEGY_CHOICES, default=ROLLING)
    health_path = models.CharField(max_length=200, default="/health")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Release(models.Model):
    """A version of a service, registered by CI. Immutable: a version is bound to one image."""

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="releases")
    version = models.CharField(max_length=128)
    image = models.CharField(max_length=512)
    git_sha = models.CharField(max_length=40, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["service", "version"], name="unique_release_version")]

    def __str__(self):
        return f"{self.service.name} {self.version}"


class Deployment(models.Model):
    """A request to run a release in an environment, and everything that happened to it."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey("environments.Environment", on_delete=models.CASCADE, related_name="deployments")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="deployments")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default="deploy")
    state = models.CharField(max_length=20, choices=DeploymentState.CHOICES, default=DeploymentState.PENDING_APPROVAL, db_index=True)
    requested_by = models.ForeignKey("auth.User", null=True, on_delete=models.SET_NULL, related_name="requested_deployments")
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    start_now = models.BooleanField(default=False, help_text="Asked to start at once (no waiting for a window).")
    break_glass = models.BooleanField(default=False)
    break_glass_reason = models.CharField(max_length=500, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    image = models.CharField(max_length=512, help_text="The image reference approvals are bound to.")
    manifest_hash = models.CharField(max_length=64, help_text="SHA-256 of the rendered manifests approvals are bound to.")
    rendered_manifest = models.TextField(blank=True, default="")
    rollback_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks")
    color = models.CharField(max_length=8, blank=True, default="", help_text="Blue-green: the colour this deployment went to.")
    previous_color = models.CharField(max_length=8, blank=True, default="")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["service", "environment", "state"])]

    def __str__(self):
        return f"#{self.pk} {self.release} to {self.environment.slug}"


class Approval(models.Model):
    """One approver's decision, bound to the image and manifests they saw."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="approvals")
    decision = models.CharField(max_length=8, choices=DECISION_CHOICES)
    comment = models.TextField(blank=True, default="")
    image = models.CharField(max_length=512)
    manifest_hash = models.CharField(max_length=64)
    checklist = models.JSONField(default=list, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "user"], name="one_decision_per_approver")]

    def __str__(self):
        return f"{self.user} {self.decision} #{self.deployment_id}"
