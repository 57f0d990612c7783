"""Periodic work of accounts, collected by portal.jobs.periodic.collect()."""
PERIODIC = [
    ("portal.throttle.prune", "default", {"interval": 3600}),  # old ThrottleCounter windows
]
