"""The periodic scheduler (`manage.py scheduler`): one acting instance, no run twice, none lost.

- **One acts.** Each instance renews a lease row in PostgreSQL (`SchedulerLease`) every tick; only
  the holder sends work. A second scheduler started by mistake waits as a standby and takes over
  when the holder's lease expires (GANTRY_SCHEDULER_LEASE_SECONDS, 15 by default), e.g. after a
  SIGKILL. A scheduler stopped with SIGTERM/Ctrl-C gives its lease up at once.
- **Fixed slots, kept in PostgreSQL.** Periodic work runs on a grid: every `interval` seconds from
  the epoch, or at the instants of a cron expression. The last slot sent is stored per entry
  (`PeriodicRun`), so a scheduler that comes back (or takes over) sends the current slot at once
  if it was not sent yet (nothing is lost for more than one period) and never sends a slot twice.
- **Runs are deduplicated where they run.** The message carries its slot; `run_periodic` claims the
  slot on the row before calling the function and skips a slot already run (a message sent twice
  by a scheduler killed between sending and recording, or duplicated by a re-send).
- **Outages.** Redis down: the slot is not recorded as sent and is retried every tick until Redis
  answers. PostgreSQL down: the scheduler holds no lease it cannot renew and waits, reconnecting.
"""
import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import import_module

from croniter import croniter
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from . import queue
from .dbretry import refresh_connections
from .models import PeriodicRun, SchedulerLease

logger = logging.getLogger("gantry.scheduler")

LEASE_NAME = "scheduler"


@dataclass
class Entry:
    """One piece of periodic work: a dotted function run on `queue` every `interval` s or on `cron`."""

    dotted: str
    queue: str = "default"
    interval: int = 0
    cron: str = ""
    name: str = field(default="")

    def __post_init__(self):
        self.name = self.name or self.dotted
        if bool(self.interval) == bool(self.cron):
            raise ValueError(f"{self.dotted}: give an interval or a cron expression, not both or neither")

    def slot(self, now):
        """The latest scheduled instant at or before `now`, as epoch seconds."""
        epoch = int(now.timestamp())
        if self.interval:
            return epoch - epoch % self.interval

        local = now.astimezone(timezone.get_default_timezone())
        return int(croniter(self.cron, local + timedelta(seconds=1)).get_prev(datetime).timestamp())

    def describe(self):
        return f"every {self.interval} s" if self.interval else f"cron '{self.cron}'"


def entries_from(periodic):
    """Entries from a PERIODIC-style list of (dotted, queue, {"interval": n} or {"cron": "..."})."""
    return [Entry(dotted, queue_name, interval=timing.get("interval", 0), cron=timing.get("cron", ""))
            for dotted, queue_name, timing in periodic]


def holder_name():
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- the lease ----------------------------------------------------------------------------------

def acquire_lease(holder, seconds):
    """Take or renew the lease (database clock). True when `holder` holds it for `seconds` more."""
    SchedulerLease.objects.get_or_create(name=LEASE_NAME)
    until = Now() + timedelta(seconds=seconds)
    renewed = (SchedulerLease.objects.filter(name=LEASE_NAME, holder=holder)
               .update(expires_at=until))
    if renewed:
        return True
    taken = (SchedulerLease.objects.filter(name=LEASE_NAME)
             .filter(Q(expires_at__isnull=True) | Q(expires_at__lt=Now()))
             .update(holder=holder, expires_at=until, acquired_at=Now()))
    return bool(taken)


def release_lease(holder):
    SchedulerLease.objects.filter(name=LEASE_NAME, holder=holder).update(expires_at=None)


# --- sending ------------------------------------------------------------------------------------

def send_due(entries, holder, now=None):
    """Send every entry whose current slot was not sent yet. Returns the names sent."""
    now = now or timezone.now()
    sent = []
    for entry in entries:
        slot = entry.slot(now)
        with transaction.atomic():
            run, created = PeriodicRun.objects.select_for_update().get_or_create(name=entry.name)
            if created and entry.cron:
                # A new cron entry waits for its next instant instead of firing at first start.
                run.last_sent_slot = slot
                run.save(update_fields=["last_sent_slot"])
                continue
            if run.last_sent_slot is not None and run.last_sent_slot >= slot:
                continue
            queue.send_periodic(entry.queue, "portal.jobs.scheduler.run_periodic", entry.name, entry.dotted, slot)
            run.last_sent_slot, run.last_sent_at, run.last_sent_by = slot, now, holder
            run.save(update_fields=["last_sent_slot", "last_sent_at", "last_sent_by"])
        sent.append(entry.name)
        logger.info("sent %s (slot %s) to queue %s", entry.name, _iso(slot), entry.queue)
    return sent


def _iso(slot):
    return datetime.fromtimestamp(slot, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_periodic(name, dotted, slot):
    """What a worker runs: claim the slot on the row (skip it if it already ran), then call the function."""
    refresh_connections()
    claimed = (PeriodicRun.objects.filter(name=name).filter(Q(last_run_slot__isnull=True) | Q(last_run_slot__lt=slot))
               .update(last_run_slot=slot, last_started_at=timezone.now()))
    if not claimed:
        logger.info("periodic %s: slot %s already ran; skipped", name, _iso(slot))
        return "skipped: already ran"
    module, _, attr = dotted.rpartition(".")
    error = ""
    try:
        return getattr(import_module(module), attr)()
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        raise
    finally:
        refresh_connections()
        PeriodicRun.objects.filter(name=name, last_run_slot=slot).update(last_finished_at=timezone.now(), last_error=error)


# --- the loop -----------------------------------------------------------------------------------

class Scheduler:
    def __init__(self, entries, holder=None, lease_seconds=None, tick=1.0, out=None):
        self.entries = list(entries)
        self.holder = holder or holder_name()
        self.lease_seconds = lease_seconds or settings.GANTRY_SCHEDULER_LEASE_SECONDS
        self.tick_seconds = tick
        self.stop = threading.Event()
        self.active = False
        self.out = out or (lambda line: logger.info(line))
        self._last_problem = ""

    def tick(self, now=None):
        """One round: hold the lease, then send what is due. Returns the names sent."""
        refresh_connections()
        try:
            holding = acquire_lease(self.holder, self.lease_seconds)
        except (DatabaseError, IntegrityError) as exc:
            self._problem(f"database unreachable, waiting: {exc.__class__.__name__}: {exc}".strip())
            self.active = False
            return []
        if holding != self.active:
            self.active = holding
            self.out(f"scheduler {self.holder}: " + ("acting (holds the lease)" if holding
                                                     else "standby (another scheduler holds the lease)"))
        if not holding:
            return []
        try:
            sent = send_due(self.entries, self.holder, now)
        except queue.QueueUnreachable as exc:
            self._problem(f"Redis unreachable, periodic work waits: {exc}")
            return []
        except DatabaseError as exc:
            self._problem(f"database unreachable, waiting: {exc.__class__.__name__}: {exc}".strip())
            return []
        self._last_problem = ""
        return sent

    def _problem(self, message):
        if message != self._last_problem:
            self.out(f"scheduler {self.holder}: {message}")
            self._last_problem = message

    def run(self):
        self.out(f"scheduler {self.holder}: starting, lease {self.lease_seconds} s")
        try:
            while not self.stop.is_set():
                self.tick()
                self.stop.wait(self.tick_seconds)
        finally:
            try:
                refresh_connections()
                release_lease(self.holder)
            except DatabaseError:
                pass
            self.out(f"scheduler {self.holder}: stopped")

    def install_signal_handlers(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
