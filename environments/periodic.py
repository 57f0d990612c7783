"""Periodic work of the environments app (collected by portal.jobs.periodic)."""
PERIODIC = [
    ("environments.teardown.expire_environments", "default", {"interval": 300}),
    ("environments.expiry.notify_expiring", "default", {"interval": 300}),
]
