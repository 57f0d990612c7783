"""Gantry's own Prometheus figures, computed at scrape time (served with django-prometheus at /metrics)."""
from prometheus_client.core import GaugeMetricFamily, REGISTRY


class GantryCollector:
    def describe(self):
        # Named up front so registering does not run a query at start-up.
        return [GaugeMetricFamily("gantry_jobs", "Jobs by queue and state", labels=["queue", "state"]),
                GaugeMetricFamily("gantry_environments", "Environments by tier and status", labels=["tier", "status"])]

    def collect(self):
        from django.db.models import Count

        from environments.models import Environment
        from portal.jobs.models import Job

        jobs = GaugeMetricFamily("gantry_jobs", "Jobs by queue and state", labels=["queue", "state"])
        try:
            for queue, state, count in Job.objects.values_list("queue", "state").annotate(n=Count("pk")).order_by():
                jobs.add_metric([queue, state], count)
            envs = GaugeMetricFamily("gantry_environments", "Environments by tier and status", labels=["tier", "status"])
            for tier, status, count in Environment.objects.values_list("tier", "status").annotate(n=Count("pk")).order_by():
                envs.add_metric([tier, status], count)
        except Exception:  # the database may be down; /readyz reports that, /metrics still answers
            return
        yield jobs
        yield envs


_registered = False


def register():
    global _registered
    if not _registered:
        REGISTRY.register(GantryCollector())
        _registered = True
