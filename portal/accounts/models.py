import hashlib
import secrets

from django.conf import settings
from django.db import models

from .choices import ROLE_CHOICES


class RoleAssignment(models.Model):
    """A role given to a user, globally (environment is null) or for one environment."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_assignments")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    environment = models.ForeignKey(
        "environments.Environment", null=True, blank=True, on_delete=models.CASCADE, related_name="role_assignments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "role", "environment"], name="unique_scoped_role"),
            models.UniqueConstraint(
                fields=["user", "role"], condition=models.Q(environment__isnull=True), name="unique_global_role"
            ),
        ]

    def __str__(self):
        scope = self.environment.slug if self.environment_id else "global"
        return f"{self.user} {self.role} ({scope})"


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    timezone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self):
        return f"profile of {self.user}"


def hash_token(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 is stored; the clear token is shown once, at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    PREFIX = "gty_"

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def generate(cls):
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        return raw, raw[:12], hash_token(raw)


class ThrottleCounter(models.Model):
    """Attempts counted per bucket (a client address, a username at an address) in fixed time
    windows: failed bearer tokens and sign-ins (portal.throttle)."""

    bucket = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "window_start"], name="one_counter_per_window")]
        indexes = [models.Index(fields=["window_start"])]

    def __str__(self):
        return f"{self.bucket} @ {self.window_start:%H:%M:%S}: {self.count}"


def environment_model():
    """The model a role may be scoped to (environments.Environment), reached through the role's
    foreign key so that accounts, a core app, imports no app."""
    return RoleAssignment._meta.get_field("environment").related_model
