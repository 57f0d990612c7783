"""Periodic work for the scheduler fault tests: each run records the slot it ran for in Redis."""
PROBE_KEY = "gantry-test:probe-runs"
NAME = "tests.faults.probe.record_run"


def record_run():
    import django_rq

    from portal.jobs.models import PeriodicRun

    slot = PeriodicRun.objects.get(name=NAME).last_run_slot
    django_rq.get_connection("default").rpush(PROBE_KEY, slot)
