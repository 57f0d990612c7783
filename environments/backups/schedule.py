"""Cron schedules in a time zone (croniter): when is a backup or a drill due, and how far apart do they fall."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


def valid_cron(expression):
    return isinstance(expression, str) and len(expression.split()) == 5 and croniter.is_valid(expression)


def valid_timezone(name):
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False


def latest_occurrence(expression, timezone_name, now):
    """The latest time at or before `now` that the schedule names (aware, in UTC)."""
    zone = ZoneInfo(timezone_name)
    local = now.astimezone(zone) + timedelta(microseconds=1)
    return croniter(expression, local).get_prev(datetime).astimezone(ZoneInfo("UTC"))


def next_occurrence(expression, timezone_name, now):
    zone = ZoneInfo(timezone_name)
    return croniter(expression, now.astimezone(zone)).get_next(datetime).astimezone(ZoneInfo("UTC"))


def longest_gap_minutes(expression, timezone_name, start=None, span_days=35):
    """The longest interval between consecutive occurrences over a month or so (None when invalid)."""
    if not valid_cron(expression) or not valid_timezone(timezone_name):
        return None
    zone = ZoneInfo(timezone_name)
    start = (start or datetime(2026, 1, 5, tzinfo=zone)).astimezone(zone)
    it = croniter(expression, start)
    previous = it.get_next(datetime)
    end = previous + timedelta(days=span_days)
    longest = 0.0
    for _ in range(50000):
        current = it.get_next(datetime)
        longest = max(longest, (current - previous).total_seconds() / 60)
        if current > end:
            break
        previous = current
    return longest


def due(expression, timezone_name, now, last_run_for, since):
    """The occurrence to run now, or None: the latest occurrence at or before `now` when it is newer than
    both the last one run (`last_run_for`) and `since` (the target's creation: no catching up on the past)."""
    if not valid_cron(expression):
        return None
    occurrence = latest_occurrence(expression, timezone_name, now)
    floor = max(t for t in (last_run_for, since) if t is not None) if (last_run_for or since) else None
    if floor is not None and occurrence <= floor:
        return None
    return occurrence
