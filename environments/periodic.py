"""Periodic work of the environments app (collected by portal.jobs.periodic)."""
# A period's name is its function's dotted path, which names its schedule row (PeriodicRun) and the RQ
# messages already queued: the reaper keeps the name it had before it moved to environments.teardown
# (environments.lifecycle re-exports it).
PERIODIC = [
    ("environments.lifecycle.expire_environments", "default", {"interval": 300}),
    ("environments.expiry.notify_expiring", "default", {"interval": 300}),
]
