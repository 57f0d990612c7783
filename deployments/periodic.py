"""Periodic work of the deployments app (collected by portal.jobs.periodic)."""
PERIODIC = [
    ("deployments.scheduling.start_due_deployments", "default", {"interval": 30}),
    ("deployments.scheduling.fail_abandoned_deployments", "default", {"interval": 300}),
    ("deployments.idle_colors.scale_down_idle_colors", "deploy", {"interval": 60}),
    ("deployments.monitoring.jobs.probe_all", "health", {"interval": 15}),
    ("deployments.monitoring.jobs.verify_due", "health", {"interval": 5}),
    ("deployments.monitoring.jobs.prune_health", "health", {"interval": 3600}),
]
