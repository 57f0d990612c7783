"""Periodic work of the audit log, collected by portal.jobs.periodic.collect()."""
PERIODIC = [
    ("portal.audit.archive.enqueue_archiving", "default", {"interval": 3600}),
]
