"""Filtering and exporting audit events; the page, the API and the export share these."""
import csv
import io
import json
from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime

from .chain import CANONICAL_FIELDS, format_at
from .models import AuditEvent

FILTERS = ("actor", "action", "environment", "outcome", "since", "until", "hide_system", "seq", "target")


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


def _first_seq_from(moment):
    """The seq of the first event at or after `moment` (None when there is none): one index lookup.

    Time only moves forward along the chain (services.record), so a time range is a seq range, and
    the keyset pages (newest seq first) walk that range on the seq index instead of filtering the
    whole table by time: "until a year ago" costs the same as the first page. The `at` conditions
    stay as well, so an event of an old chain written while a clock stepped back is never shown
    outside the range asked for."""
    return AuditEvent.objects.filter(at__gte=moment).order_by("at", "seq").values_list("seq", flat=True).first()


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
        moment = _parse_moment("since", since)
        first = _first_seq_from(moment)
        qs = qs.filter(at__gte=moment, seq__gte=first) if first is not None else qs.none()
    until = (params.get("until") or "").strip()
    if until:
        moment = _parse_moment("until", until)
        qs = qs.filter(at__lt=moment)
        first = _first_seq_from(moment)
        if first is not None:
            qs = qs.filter(seq__lt=first)
    if (params.get("hide_system") or "").strip() in ("1", "true", "on", "yes"):
        # the job runner's own bookkeeping (job queued/started/succeeded by Gantry itself)
        qs = qs.exclude(action__startswith="job.", actor_id__isnull=True)
    seq = (params.get("seq") or "").strip()
    if seq:
        if not seq.isdigit():
            raise FilterError(f"seq: '{seq}' is not an event number")
        qs = qs.filter(seq=int(seq))
    target = (params.get("target") or "").strip()
    if target:
        kind, _, pk = target.rpartition(":")
        if not kind or not pk:
            raise FilterError(f"target: '{target}' is not TYPE:ID (e.g. deployments.deployment:6)")
        qs = qs.filter(target_type=kind, target_id=pk)
    return qs


class Page:
    """One page of a keyset (cursor) pagination over events newest first: no OFFSET, no COUNT, so
    the first page and the ten-thousandth cost the same."""

    def __init__(self, events, older, newer):
        self.object_list = events
        self.older = older  # seq to pass as `before` for the next (older) page, or None
        self.newer = newer  # seq to pass as `after` for the previous (newer) page, or None


def keyset_page(queryset, *, before=None, after=None, limit=50):
    if after is not None:
        rows = list(queryset.filter(seq__gt=after).order_by("seq")[: limit + 1])
        more_newer = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        older = rows[-1].seq if rows else None
        return Page(rows, older, rows[0].seq if rows and more_newer else None)
    qs = queryset.order_by("-seq")
    if before is not None:
        qs = qs.filter(seq__lt=before)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].seq if more else None, rows[0].seq if rows and before is not None else None)


def cursor_value(name, text):
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise FilterError(f"{name}: '{text}' is not an event number")
    return int(text)


def event_as_dict(event):
    data = {name: getattr(event, name) for name in CANONICAL_FIELDS}
    data["at"] = format_at(event.at)
    data["id"] = event.pk
    data["hash"] = event.hash
    data["target"] = event.target
    return data


EXPORT_COLUMNS = ("id", *CANONICAL_FIELDS, "hash")
BATCH = 2000


def export_rows(queryset):
    """Events as export dicts in chain order, read through a server-side cursor in chunks: memory
    stays flat however many rows there are. Tuples, not model instances: several times faster."""
    names = EXPORT_COLUMNS
    for values in queryset.order_by("seq").values_list(*names).iterator(chunk_size=BATCH):
        row = dict(zip(names, values, strict=True))
        row["at"] = format_at(row["at"])
        row["target"] = f"{row['target_type']}:{row['target_repr'] or row['target_id']}" if row["target_type"] else ""
        yield row


def batched(lines):
    """Join lines into ~BATCH-line strings: fewer, larger writes to the socket."""
    buffer = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= BATCH:
            yield "".join(buffer)
            buffer = []
    if buffer:
        yield "".join(buffer)


def export_jsonl(queryset):
    """Yield JSONL in chain order; `audit_verify --file` checks an unfiltered export offline."""
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
    return (encode(row) + "\n" for row in export_rows(queryset))


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
    header = buffer.getvalue()
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode

    def lines():
        yield header
        for row in export_rows(queryset):
            buffer.seek(0)
            buffer.truncate()
            row["changes"], row["detail"] = encode(row["changes"]), encode(row["detail"])
            writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
            yield buffer.getvalue()

    return lines()
