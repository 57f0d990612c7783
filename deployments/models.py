from django.db import models

from .choices import ROLLING, STRATEGY_CHOICES


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
