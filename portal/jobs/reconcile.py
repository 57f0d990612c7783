"""Reconcile job rows with the queue: nothing stuck `queued` because Redis lost its message.

Redis loses messages when it restarts without persistence, is flushed, evicts keys, or did not
answer when the job was created (queue.send_or_wait). The row is the truth, so a periodic pass
(scheduler, every GANTRY_RECONCILE_SECONDS) looks for jobs that are `queued`, were last sent more
than GANTRY_RECONCILE_GRACE_SECONDS ago, and whose message is in no RQ place (queue, started,
scheduled or deferred registry), and sends them again with a line in the job's log. A job sent
twice runs once: `run_job` locks the row and starts only a job still `queued`.

Running jobs are not touched here: a running job beats its heartbeat in the database, and one
whose worker died is failed by the reaper (services.reap_stale_jobs) with the reason.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import queue
from .models import Job, JobLogLine, JobState

logger = logging.getLogger("gantry.jobs")

RESENT = "not found in the job queue (Redis restarted, was flushed, or did not answer when the job was sent); sent again"


def reconcile_jobs(now=None, limit=1000):
    """One pass. Returns {"resent": n, "checked": m} or {"queue": "unreachable", ...} when Redis is down."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.GANTRY_RECONCILE_GRACE_SECONDS)
    candidates = list(Job.objects.filter(state=JobState.QUEUED, sent_at__lt=cutoff)
                      .order_by("sent_at").values_list("pk", "attempts", "queue")[:limit])
    if not candidates:
        return {"resent": 0, "checked": 0}
    from .services import QUEUES

    try:
        held = queue.held_message_ids(QUEUES)
    except queue.QueueUnreachable as exc:
        logger.warning("reconcile: %s; %d queued job(s) wait for Redis", exc, len(candidates))
        return {"resent": 0, "checked": len(candidates), "queue": "unreachable"}
    resent = 0
    for pk, attempts, _queue_name in candidates:
        if f"{pk}-{attempts}" in held:
            continue
        try:
            if _resend(pk, attempts, now):
                resent += 1
        except queue.QueueUnreachable as exc:  # Redis went away during the pass; the next pass goes on
            logger.warning("reconcile stopped: %s", exc)
            break
    if resent:
        logger.info("reconcile: sent %d job(s) again", resent)
    return {"resent": resent, "checked": len(candidates)}


def _resend(pk, attempts, now):
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
        if job is None or job.state != JobState.QUEUED or job.attempts != attempts:
            return False  # started, cancelled or being changed right now
        queue.send(job)  # inside the lock: a worker that takes it at once waits for this commit
        job.sent_at = now
        job.save(update_fields=["sent_at"])
        JobLogLine.objects.create(job_id=job.pk, level="warning", message=RESENT)
    return True
