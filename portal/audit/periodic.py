"""Periodic work of the audit log, collected by portal.jobs.periodic.collect()."""
PERIODIC = [
    ("portal.audit.checkpoints.write_checkpoint_if_configured", "default", {"interval": 300}),
    ("portal.audit.archive.enqueue_archiving", "default", {"interval": 3600}),
]
