"""Periodic work of live health (registered in deployments/periodic.py): probing, verification, pruning."""
from datetime import timedelta

from django.utils import timezone

from .models import HealthCheck, HealthMinute
# Two periods run what other modules define, under this module's names (deployments/periodic.py).
from .probing import probe_all  # noqa: F401
from .verification import verify_due  # noqa: F401

CHECKS_KEPT = timedelta(hours=48)
MINUTES_KEPT = timedelta(days=30)


def prune_health(now=None):
    """Raw checks older than 48 h and minute aggregates older than 30 days go; returns (checks, minutes) removed."""
    now = now or timezone.now()
    checks, _ = HealthCheck.objects.filter(at__lt=now - CHECKS_KEPT).delete()
    minutes, _ = HealthMinute.objects.filter(minute__lt=now - MINUTES_KEPT).delete()
    return checks, minutes
