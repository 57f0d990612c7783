"""The one place where jobs meet Redis: send a job's id to its RQ queue, and list the ids RQ holds.

Redis only wakes a worker; the Job row is the truth. So a send that fails (Redis down, restarting,
unreachable) changes nothing but a log line: the job stays `queued`, and the reconcile pass
(reconcile.py) sends it when Redis answers again. Running a job twice is harmless: `run_job`
locks the row and starts only a job that is still `queued`.
"""
import logging

import django_rq

# Every send here goes to Redis at once (commit_mode="auto"): callers decide when, usually from
# `transaction.on_commit`, or inside a row lock on purpose (reconcile.py, scheduler.py).
from django.conf import settings
from redis.exceptions import RedisError
from rq import Queue
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from .models import JobLogLine

logger = logging.getLogger("gantry.jobs")

UNREACHABLE = "queue unreachable, will retry"


class QueueUnreachable(Exception):
    pass


def connection(queue="default"):
    return django_rq.get_connection(queue)


def message_id(job):
    """The RQ job id of a job's current attempt (RQ carries nothing else)."""
    return f"{job.pk}-{job.attempts}"


def send(job):
    """Put the job's id on its RQ queue; raise QueueUnreachable when Redis does not take it."""

    try:
        django_rq.get_queue(job.queue, commit_mode="auto").enqueue(
            "portal.jobs.services.run_job", str(job.pk), job_id=message_id(job),
            job_timeout=settings.RQ_QUEUES[job.queue]["DEFAULT_TIMEOUT"],
        )
    except (RedisError, OSError) as exc:
        raise QueueUnreachable(f"{exc.__class__.__name__}: {exc}") from exc


def send_periodic(queue_name, func, *args):
    """Put one run of periodic work on a queue; raise QueueUnreachable when Redis does not take it."""

    try:
        django_rq.get_queue(queue_name, commit_mode="auto").enqueue(func, *args, result_ttl=600, failure_ttl=86400)
    except (RedisError, OSError) as exc:
        raise QueueUnreachable(f"{exc.__class__.__name__}: {exc}") from exc


def send_or_wait(job):
    """Send the job; when Redis does not answer, say so on the job and leave it queued. True when sent."""
    try:
        send(job)
        return True
    except QueueUnreachable as exc:
        logger.warning("job %s stays queued: %s (%s)", job.pk, UNREACHABLE, exc)
        try:
            JobLogLine.objects.create(job_id=job.pk, level="warning", message=f"{UNREACHABLE} ({exc})")
        except Exception:  # the database is down too; the reconcile pass will still find the row
            logger.warning("could not write the log line of job %s", job.pk, exc_info=True)
        return False


def held_message_ids(queues):
    """Every RQ job id that RQ will still run or is running: waiting in a queue (or being taken from
    it), started, scheduled or deferred. Raises QueueUnreachable when Redis does not answer."""

    conn = connection()
    held = set()
    try:
        for name in queues:
            rq_queue = Queue(name, connection=conn)
            for key in (rq_queue.key, rq_queue.intermediate_queue_key):  # waiting, being taken by a worker
                held.update(item.decode() if isinstance(item, bytes) else item for item in conn.lrange(key, 0, -1))
            for registry in (StartedJobRegistry, ScheduledJobRegistry, DeferredJobRegistry):
                held.update(registry(name, connection=conn).get_job_ids(cleanup=False))
    except (RedisError, OSError) as exc:
        raise QueueUnreachable(f"{exc.__class__.__name__}: {exc}") from exc
    return held


def ping():
    """Raise QueueUnreachable unless Redis answers."""
    try:
        connection().ping()
    except (RedisError, OSError) as exc:
        raise QueueUnreachable(f"{exc.__class__.__name__}: {exc}") from exc
