"""Periodic work, enqueued by the scheduler (`manage.py scheduler`, RQ's CronScheduler) and run by workers.

Each app lists its own periodic work in `<app>/periodic.py` as `PERIODIC`, a list of
(dotted function, queue, timing: {"interval": seconds} or {"cron": expression}); `collect()`
gathers them from every installed app, this module's (the core's own) included. The core never
names an app's work.
"""
from importlib import import_module

from django.apps import apps

PERIODIC = [
    ("portal.jobs.services.reap_stale_jobs", "default", {"interval": 20}),
    ("portal.jobs.reconcile.reconcile_jobs", "default", {"interval": 30}),
]


def collect():
    """Every installed app's PERIODIC entries, in INSTALLED_APPS order."""
    entries = []
    for config in apps.get_app_configs():
        name = f"{config.name}.periodic"
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        entries.extend(getattr(module, "PERIODIC", []))
    return entries
