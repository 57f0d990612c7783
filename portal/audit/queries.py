"""Filtering and exporting audit events; the page, the API and the export share these."""
import csv
import io
import json
from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime

from .chain import CANONICAL_FIELDS, format_at
from .models import AuditEvent

FILTERS = ("actor", "action", "environment", "outcome", "since", "until")


class FilterError(ValueError):
    pass


def _parse_moment(name, text):
    try:
        moment = parse_datetime(text)
        day = parse_date(text) if moment is None else None
    except ValueError:
        raise FilterError(f"{name}: '{text}' is not a real date") from None
    if moment is None:
        if day is None:
            raise FilterError(f"{name}: '{text}' is not a date or an ISO 8601 time (e.g. 2026-11-21T03:00:00+09:00)")
        moment = datetime.combine(day, time.min, tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def filter_events(params, queryset=None):
    """Apply the audit filters from a dict-like of strings. Raises FilterError for bad values."""
    qs = AuditEvent.objects.all() if queryset is None else queryset
    actor = (params.get("actor") or "").strip()
    if actor:
        qs = qs.filter(actor=actor)
    action = (params.get("action") or "").strip()
    if action:
        qs = qs.filter(action__startswith=action) if action.endswith(".") else qs.filter(action=action)
    environment = (params.get("environment") or "").strip()
    if environment:
        qs = qs.filter(environment=environment)
    outcome = (params.get("outcome") or "").strip()
    if outcome:
        if outcome not in {"success", "denied", "failure"}:
            raise FilterError("outcome must be one of success, denied, failure")
        qs = qs.filter(outcome=outcome)
    since = (params.get("since") or "").strip()
    if since:
        qs = qs.filter(at__gte=_parse_moment("since", since))
    until = (params.get("until") or "").strip()
    if until:
        qs = qs.filter(at__lt=_parse_moment("until", until))
    return qs


def event_as_dict(event):
    data = {name: getattr(event, name) for name in CANONICAL_FIELDS}
    data["at"] = format_at(event.at)
    data["id"] = event.pk
    data["hash"] = event.hash
    data["target"] = event.target
    return data


def export_jsonl(queryset):
    """Yield JSONL lines in chain order; `audit_verify --file` checks them offline."""
    for event in queryset.order_by("seq").iterator(chunk_size=2000):
        yield json.dumps(event_as_dict(event), sort_keys=True, ensure_ascii=False) + "\n"


CSV_COLUMNS = ("id", "seq", "at", "actor", "action", "outcome", "target", "environment", "ip",
               "changes", "detail", "prev_hash", "hash")


def _cell(value):
    """Keep a spreadsheet from reading an attacker-chosen value (a username, say) as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(queryset):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for event in queryset.order_by("seq").iterator(chunk_size=2000):
        buffer.seek(0)
        buffer.truncate()
        row = event_as_dict(event)
        writer.writerow([
            _cell(json.dumps(row[c], sort_keys=True, ensure_ascii=False) if c in ("changes", "detail") else row[c])
            for c in CSV_COLUMNS
        ])
        yield buffer.getvalue()
