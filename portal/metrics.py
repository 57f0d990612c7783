"""Gantry's own Prometheus figures, computed at scrape time (served with django-prometheus at /metrics).

The core reports jobs; each app registers its own gauges with `register_gauge` from its
AppConfig.ready() (environments: environments by tier and status).
"""
from django.db.models import Count
from prometheus_client.core import REGISTRY, GaugeMetricFamily

from portal.jobs.models import Job

_gauges = []  # (name, help, labels, rows): rows() yields (label values..., value)


def register_gauge(name, help_text, labels, rows):
    """Add a gauge computed at scrape time by `rows()`; registering twice is harmless."""
    if all(gauge[0] != name for gauge in _gauges):
        _gauges.append((name, help_text, labels, rows))


def _job_rows():
    return Job.objects.values_list("queue", "state").annotate(n=Count("pk")).order_by()


register_gauge("gantry_jobs", "Jobs by queue and state", ["queue", "state"], _job_rows)


class GantryCollector:
    def describe(self):
        # Named up front so registering does not run a query at start-up.
        return [GaugeMetricFamily(name, help_text, labels=labels) for name, help_text, labels, _ in _gauges]

    def collect(self):
        families = []
        try:
            for name, help_text, labels, rows in _gauges:
                family = GaugeMetricFamily(name, help_text, labels=labels)
                for *values, count in rows():
                    family.add_metric(list(values), count)
                families.append(family)
        except Exception:  # the database may be down; /readyz reports that, /metrics still answers
            return
        yield from families


_registered = False


def register():
    global _registered
    if not _registered:
        REGISTRY.register(GantryCollector())
        _registered = True
