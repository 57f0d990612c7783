"""Live health of every service in every environment, verification after each deployment, and
automatic rollback (issue #9). App label ``monitoring``."""
