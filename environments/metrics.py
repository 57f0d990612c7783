"""The environments' Prometheus gauge (registered with portal.metrics when the app is ready)."""
from django.db.models import Count

from portal.metrics import register_gauge

from .models import Environment


def _environment_rows():
    return Environment.objects.values_list("tier", "status").annotate(n=Count("pk")).order_by()


def register():
    register_gauge("gantry_environments", "Environments by tier and status", ["tier", "status"], _environment_rows)
