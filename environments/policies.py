"""Protection rules of an environment: deployment windows and freezes (one place decides)."""
import re
import zoneinfo
from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.accounts import policies as roles
from portal.validation import check_timezone

from .choices import SELF_SERVICE_TIERS, TIERS, WEEKDAYS

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def clean_windows(value):
    """Validate a list of windows; return (clean list, errors). An empty list means always open."""
    errors = []
    if value is None:
        return [], errors
    if not isinstance(value, list):
        return None, ["deployment_windows: must be a list of {days, start, end, timezone}"]
    clean = []
    for index, window in enumerate(value):
        where = f"deployment_windows[{index}]"
        if not isinstance(window, dict):
            errors.append(f"{where}: must be an object with days, start, end and timezone")
            continue
        unknown = set(window) - {"days", "start", "end", "timezone"}
        if unknown:
            errors.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        days = window.get("days")
        if not isinstance(days, list) or not days:
            errors.append(f"{where}.days: a non-empty list of weekdays ({', '.join(WEEKDAYS)})")
            days = []
        else:
            bad = [d for d in days if not isinstance(d, str) or d.lower() not in WEEKDAYS]
            if bad:
                errors.append(f"{where}.days: unknown day(s) {', '.join(map(str, bad))}; use {', '.join(WEEKDAYS)}")
            days = sorted({d.lower() for d in days if isinstance(d, str) and d.lower() in WEEKDAYS}, key=WEEKDAYS.index)
        times = {}
        for key in ("start", "end"):
            text = window.get(key)
            if not isinstance(text, str) or not HHMM.match(text):
                errors.append(f"{where}.{key}: '{text}' is not a time HH:MM (00:00-23:59)")
            else:
                times[key] = text
        if times.get("start") and times.get("start") == times.get("end"):
            errors.append(f"{where}: start and end are both {times['start']}; a window must have a length "
                          "(an end before the start means the window runs past midnight)")
        tz = check_timezone(window.get("timezone"), f"{where}.timezone", errors)
        clean.append({"days": days, "start": times.get("start"), "end": times.get("end"), "timezone": tz})
    return (None, errors) if errors else (clean, [])


def _to_time(text):
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def window_open(windows, at=None):
    """True when `at` (default: now) falls in one of the windows, or when there are none.

    A window whose end is before its start runs past midnight: Fri 22:00-02:00 covers Saturday
    00:00-02:00 as well (the day named is the day the window starts).
    """
    if not windows:
        return True
    at = at or timezone.now()
    for window in windows:
        local = at.astimezone(zoneinfo.ZoneInfo(window["timezone"]))
        start, end = _to_time(window["start"]), _to_time(window["end"])
        now_t = local.time()
        today = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        if start < end:
            if today in window["days"] and start <= now_t < end:
                return True
        else:
            if today in window["days"] and now_t >= start:
                return True
            if yesterday in window["days"] and now_t < end:
                return True
    return False


def next_window_opening(windows, at=None):
    """When the next window opens (a datetime), None if always open or already open."""
    if not windows or window_open(windows, at):
        return None
    at = at or timezone.now()
    best = None
    for window in windows:
        tz = zoneinfo.ZoneInfo(window["timezone"])
        local = at.astimezone(tz)
        for offset in range(0, 8):
            day = local.date() + timedelta(days=offset)
            if WEEKDAYS[day.weekday()] not in window["days"]:
                continue
            candidate = datetime.combine(day, _to_time(window["start"]), tzinfo=tz)
            if candidate > at and (best is None or candidate < best):
                best = candidate
                break
    return best


def clean_freeze(value):
    """Validate a freeze {until, reason} or None; return ((until, reason), errors)."""
    if value is None:
        return (None, ""), []
    if not isinstance(value, dict):
        return None, ["freeze: must be null or an object {until, reason}"]
    errors = []
    until_text = value.get("until")
    try:
        until = parse_datetime(until_text) if isinstance(until_text, str) else None
    except ValueError:  # well-formed but impossible, e.g. February 30th
        until = None
    if until is None:
        errors.append(f"freeze.until: '{until_text}' is not an ISO 8601 time with a zone (e.g. 2026-12-24T00:00:00+09:00)")
    elif until.tzinfo is None:
        errors.append("freeze.until: give a time zone offset (e.g. +09:00 or Z)")
        until = None
    elif until <= timezone.now():
        errors.append("freeze.until: must be in the future")
    reason = value.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        errors.append("freeze.reason: required (say why deployments are frozen)")
    elif len(reason) > 500:
        errors.append("freeze.reason: at most 500 characters")
    if errors:
        return None, errors
    return (until, reason.strip()), []


def active_freeze(environment, at=None):
    at = at or timezone.now()
    if environment.freeze_until and environment.freeze_until > at:
        return {"until": environment.freeze_until, "reason": environment.freeze_reason}
    return None


# The protection a new environment of each tier gets unless its creator says otherwise.
TIER_DEFAULTS = {
    "production": {"prevent_self_approval": True, "required_approvals": 1},
}


def tier_defaults(tier):
    """The rule values a new environment of `tier` starts with (those its creator did not give)."""
    return dict(TIER_DEFAULTS.get(tier, {}))


def creatable_tiers(user):
    """The tiers this user may create environments in (admin: all; deployer: development/preview)."""
    if roles.is_admin(user):
        return list(TIERS)
    if roles.has_role(user, roles.DEPLOYER):
        return [t for t in TIERS if t in SELF_SERVICE_TIERS]
    return []


def can_create_environment(user, tier):
    return tier in creatable_tiers(user)


def create_refusal(user, tier=None):
    """Why `user` may not create an environment (of `tier`, when given): None when they may. The
    service denies with it; the create page asks it before showing the form."""
    allowed = creatable_tiers(user)
    if not allowed:
        return "creating environments needs the admin role, or deployer for development and preview"
    if tier in TIERS and tier not in allowed:
        return f"you may create {' and '.join(allowed)} environments only"
    return None


def edit_refusal(user, env):
    """Why `user` may not change `env` and its protection rules: None when they may (its admin)."""
    if roles.can_edit_environment(user, env):
        return None
    return "only an admin can change an environment and its protection rules"
