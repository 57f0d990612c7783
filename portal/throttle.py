"""Counting attempts per key in fixed time windows, exactly, in the database.

One row per (bucket, window); each attempt is a single INSERT ... ON CONFLICT DO UPDATE ...
RETURNING, so concurrent attempts each get their own count and none is lost: 30 parallel
attempts against a limit of 10 let exactly 10 through. Works on PostgreSQL and SQLite (3.35+).
"""
import math
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from portal.accounts.models import ThrottleCounter

# A plain string (no formatting): the table is the model's; values are parameters.
_HIT = ("INSERT INTO accounts_throttlecounter (bucket, window_start, count) VALUES (%s, %s, 1) "
        "ON CONFLICT (bucket, window_start) DO UPDATE SET count = accounts_throttlecounter.count + 1 RETURNING count")
if ThrottleCounter._meta.db_table != "accounts_throttlecounter":  # pragma: no cover
    raise RuntimeError("the throttle table was renamed: rename it in _HIT too")


class Window:
    """The count of one bucket in the current window, and when that window ends."""

    def __init__(self, count, ends_at, now):
        self.count, self.ends_at = count, ends_at
        self.retry_after = max(1, math.ceil((ends_at - now).total_seconds()))


def _window_start(now, seconds):
    start = int(now.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(start, tz=UTC)


def hit(bucket, seconds, now=None):
    """Count one attempt for `bucket` in the current window of `seconds`; returns its Window."""
    now = now or timezone.now()
    start = _window_start(now, seconds)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_HIT, [bucket[:200], start])
        count = cursor.fetchone()[0]
    return Window(count, start + timedelta(seconds=seconds), now)


def forgive(bucket, seconds, now=None):
    """Take one attempt back (a sign-in that turned out right does not count against the address)."""

    start = _window_start(now or timezone.now(), seconds)
    ThrottleCounter.objects.filter(bucket=bucket[:200], window_start=start, count__gt=0).update(count=F("count") - 1)


def clear(bucket):
    ThrottleCounter.objects.filter(bucket=bucket[:200]).delete()


def prune(older_than_seconds=86400):
    """Periodic: drop the counters of windows long gone."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return ThrottleCounter.objects.filter(window_start__lt=cutoff).delete()[0]
