"""Periodic work of live health (registered in deployments/periodic.py): probing, verification, pruning."""
from datetime import timedelta

from django.utils import timezone

from .models import HealthCheck, HealthMinute
from .probing import probe_all as enqueue_shards
from .verification import verify_due as step

CHECKS_KEPT = timedelta(hours=48)
MINUTES_KEPT = timedelta(days=30)


def probe_all():
    return enqueue_shards()


def verify_due():
    return step()


def prune_health(now=None):
    """Raw checks older than 48 h and minute aggregates older than 30 days go; returns (checks, minutes) removed."""
    now = now or timezone.now()
    checks, _ = HealthCheck.objects.filter(at__lt=now - CHECKS_KEPT).delete()
    minutes, _ = HealthMinute.objects.filter(minute__lt=now - MINUTES_KEPT).delete()
    return checks, minutes
