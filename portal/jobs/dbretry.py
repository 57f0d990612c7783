"""Living through a PostgreSQL restart in a long-running process (a worker, the scheduler).

Django reconnects only when told to: a connection cut by a database restart stays broken until
`close_old_connections()` notices it. Workers call it before and after each job; the writes that
record a job's end go through `with_database`, which waits for the database to come back.
"""
import logging
import time

from django.db import close_old_connections, connection
from django.db.utils import InterfaceError, OperationalError

logger = logging.getLogger("gantry.jobs")


def refresh_connections():
    """Close connections a database restart broke (or that outlived CONN_MAX_AGE); the next query
    reconnects. Not inside a transaction (an eager job run by a caller's transaction): that one stays."""
    if not connection.in_atomic_block:
        close_old_connections()


def connection_lost(exc):
    """True when `exc` says the database connection failed (not a bad query)."""
    return isinstance(exc, (OperationalError, InterfaceError))


def with_database(func, seconds, what="write to the database"):
    """Call `func()`; while the database is unreachable, reconnect and retry for up to `seconds`."""
    deadline = time.monotonic() + seconds
    delay = 0.5
    while True:
        refresh_connections()
        try:
            return func()
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("could not %s (%s); retrying in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5)
