"""The scheduler: one acts (a lease in PostgreSQL), a slot is sent once and runs once, a killed
scheduler's standby takes over without losing more than one period."""
import itertools
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.jobs.models import PeriodicRun, SchedulerLease
from portal.jobs.scheduler import Entry, Scheduler, run_periodic
from tests.workers import ROOT, start_worker, wait_for
from tests.workers import worker_env as base_env

from . import probe

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = Entry(probe.NAME, "default", interval=2)


def test_only_the_lease_holder_sends_and_a_standby_takes_over_when_it_dies(redis_server):
    first, second = Scheduler([PROBE], holder="first", lease_seconds=15), Scheduler([PROBE], holder="second", lease_seconds=15)
    now = timezone.now()
    assert first.tick(now) == [probe.NAME]
    assert second.tick(now) == []  # started by mistake: stands by
    assert first.tick(now) == []   # this slot was sent already
    assert first.active and not second.active
    assert redis_server.client().llen("rq:queue:default") == 1

    # The holder is SIGKILLed: it stops renewing; once its lease has expired the standby acts,
    # sending the next slot, never the one already sent.
    SchedulerLease.objects.filter(holder="first").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert second.tick(now) == []
    assert second.active
    assert second.tick(now + timedelta(seconds=2)) == [probe.NAME]
    run = PeriodicRun.objects.get(name=probe.NAME)
    assert run.last_sent_by == "second" and run.last_sent_slot == PROBE.slot(now + timedelta(seconds=2))
    assert first.tick(now + timedelta(seconds=4)) == [] and not first.active  # the old holder came back: standby


def test_a_stopped_scheduler_gives_its_lease_up_at_once(redis_server):
    first, second = Scheduler([PROBE], holder="first"), Scheduler([PROBE], holder="second")
    first.tick()
    first.stop.set()
    first.run()  # returns at once, releasing the lease
    assert second.tick() is not None and second.active


def test_a_slot_runs_once_however_often_it_is_sent(redis_server):
    PeriodicRun.objects.create(name=probe.NAME)
    slot = PROBE.slot(timezone.now())
    run_periodic(probe.NAME, probe.NAME, slot)
    assert run_periodic(probe.NAME, probe.NAME, slot) == "skipped: already ran"
    run_periodic(probe.NAME, probe.NAME, slot + 2)
    runs = [int(x) for x in redis_server.client().lrange(probe.PROBE_KEY, 0, -1)]
    assert runs == [slot, slot + 2]


def test_redis_down_delays_periodic_work_without_losing_the_slot(redis_server):
    scheduler = Scheduler([PROBE], holder="only")
    redis_server.stop()
    now = timezone.now()
    assert scheduler.tick(now) == []
    assert not PeriodicRun.objects.filter(name=probe.NAME, last_sent_slot__isnull=False).exists()
    redis_server.start()
    assert scheduler.tick(now) == [probe.NAME]


def start_scheduler(env, *args):
    return subprocess.Popen([sys.executable, "manage.py", "scheduler", "--only", f"{probe.NAME}=2", "--lease", "3",
                             "--tick", "0.5", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_two_scheduler_processes_one_killed_no_slot_twice_none_lost(redis_server):
    env = base_env(REDIS_URL=redis_server.url)
    worker = start_worker("default", env={"REDIS_URL": redis_server.url})
    schedulers = [start_scheduler(env), start_scheduler(env)]
    redis = redis_server.client()
    try:
        assert wait_for(lambda: redis.llen(probe.PROBE_KEY) >= 3, timeout=60), "the probe never ran"
        holder = SchedulerLease.objects.get().holder
        acting = next(p for p in schedulers if holder.split(":")[1] == str(p.pid))
        os.kill(acting.pid, signal.SIGKILL)
        acting.wait(timeout=10)
        before = redis.llen(probe.PROBE_KEY)
        assert wait_for(lambda: redis.llen(probe.PROBE_KEY) >= before + 3, timeout=60), "the standby never took over"
        assert SchedulerLease.objects.get().holder != holder
        # The killed one comes back: it stands by, sends nothing twice.
        schedulers.append(start_scheduler(env))
        count = redis.llen(probe.PROBE_KEY)
        assert wait_for(lambda: redis.llen(probe.PROBE_KEY) >= count + 2, timeout=60)
    finally:
        for proc in schedulers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=20)[0] for proc in schedulers]
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    slots = [int(x) for x in redis.lrange(probe.PROBE_KEY, 0, -1)]
    assert len(slots) == len(set(slots)), f"a slot ran twice: {slots}"
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap in (2, 4) for gap in gaps), f"more than one period lost: {slots}\n" + "\n".join(outputs)
    assert sum("acting (holds the lease)" in out for out in outputs) >= 2
    assert all(out.count("acting (holds the lease)") <= 1 for out in outputs)
