"""Periodic work, enqueued by the scheduler (`manage.py scheduler`, RQ's CronScheduler) and run by workers.

Each entry: (dotted function, queue, interval in seconds or a cron expression). Later features
add their entries here (deployment windows opening, health polls, backup schedules, TTL expiry).
"""
PERIODIC = [
    ("portal.jobs.periodic.reap_stale_jobs", "default", {"interval": 20}),
    ("portal.audit.checkpoints.write_checkpoint_if_configured", "default", {"interval": 300}),
    ("portal.throttle.prune", "default", {"interval": 3600}),
    ("portal.jobs.periodic.reconcile_jobs", "default", {"interval": 30}),
    ("portal.jobs.periodic.start_due_deployments", "default", {"interval": 30}),
    ("portal.jobs.periodic.poll_health", "health", {"interval": 30}),
    ("portal.jobs.periodic.fail_abandoned_deployments", "default", {"interval": 300}),
    ("portal.jobs.periodic.expire_environments", "default", {"interval": 300}),
    ("portal.jobs.periodic.notify_expiring_environments", "default", {"interval": 300}),
    ("deployments.idle_colors.scale_down_idle_colors", "deploy", {"interval": 60}),
    ("environments.backups.periodic.tick", "default", {"interval": 60}),
    ("environments.backups.periodic.fail_interrupted", "default", {"interval": 30}),
    ("deployments.monitoring.jobs.probe_all", "health", {"interval": 15}),
    ("deployments.monitoring.jobs.verify_due", "health", {"interval": 5}),
    ("deployments.monitoring.jobs.prune_health", "health", {"interval": 3600}),
    ("portal.audit.archive.enqueue_archiving", "default", {"interval": 3600}),
]


def reap_stale_jobs():
    from portal.jobs.services import reap_stale_jobs as reap

    return reap()


def reconcile_jobs():
    from portal.jobs.reconcile import reconcile_jobs as reconcile

    return reconcile()


def start_due_deployments():
    from deployments.scheduling import start_due_deployments as start

    return start()


def poll_health():
    from deployments.health import poll_all

    return poll_all()


def fail_abandoned_deployments():
    from django.conf import settings

    from deployments.scheduling import fail_abandoned_deployments as fail

    return fail(settings.GANTRY_ABANDON_MINUTES)


def expire_environments():
    from environments.lifecycle import expire_environments as expire

    return expire()


def notify_expiring_environments():
    from environments.expiry import notify_expiring

    return notify_expiring()
