"""Filtering and exporting audit events; the page, the API and the export share these."""
import csv
import io
import json

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import BigIntegerField, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from psycopg import ClientCursor

from portal.accounts import policies
from portal.errors import Forbidden
from portal.validation import parse_moment

from .chain import CANONICAL_FIELDS, format_at
from .models import AuditEvent

NO_SEQ_AFTER = 2**63 - 1  # `until` later than every event: no upper bound on seq
FILTERS = ("actor", "action", "environment", "outcome", "since", "until", "hide_system", "seq", "target")


def require_auditor(user, needs="the audit log needs"):
    """The one rule for what is for auditors (global viewers and admins): the audit log (page, API,
    export), the compliance reports and the evidence packs. `needs` starts the refusal's sentence."""
    if not policies.can_view_audit(user):
        raise Forbidden(f"{needs} the global viewer (auditor) or admin role")


class FilterError(ValueError):
    pass


def _parse_moment(name, text):
    return parse_moment(name, text, error=FilterError, naive_is_utc=True)


def _first_seq_from(moment):
    """The seq of the first event at or after `moment` (NULL when there is none), as a subquery: one
    index lookup on `at`, run by PostgreSQL before the page's own scan, in the same round trip.

    Time only moves forward along the chain (services.record), so a time range is a seq range, and
    the keyset pages (newest seq first) walk that range on the seq index instead of filtering the
    whole table by time: "until a year ago" costs the same as the first page. The `at` conditions
    stay as well, so an event of an old chain written while a clock stepped back is never shown
    outside the range asked for."""
    return Subquery(AuditEvent.objects.filter(at__gte=moment).order_by("at", "seq").values("seq")[:1])


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
        qs = qs.filter(at__gte=moment, seq__gte=_first_seq_from(moment))  # none after it: NULL, no rows
    until = (params.get("until") or "").strip()
    if until:
        moment = _parse_moment("until", until)
        qs = qs.filter(at__lt=moment, seq__lt=Coalesce(_first_seq_from(moment), Value(NO_SEQ_AFTER),
                                                                  output_field=BigIntegerField()))
    if (params.get("hide_system") or "").strip() in ("1", "true", "on", "yes"):
        # the job runner's own bookkeeping (job queued/started/succeeded by Gantry itself)
        if action.startswith("job."):
            # only job events a person caused are left: said so, the rare rows come from their own
            # small index (models: audit_person_job_seq) instead of a walk through every job event
            qs = qs.filter(action__startswith="job.", actor_id__isnull=False)
        else:
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
CHUNK_BYTES = 256 * 1024
CSV_COLUMNS = ("id", "seq", "at", "actor", "action", "outcome", "target", "environment", "ip",
               "changes", "detail", "prev_hash", "hash")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# An export row is the stored columns plus two derived ones, each written here once for PostgreSQL
# (which writes the export itself: _copy) and once for other databases (_derived).
_T = '"audit_auditevent".'
DERIVED_SQL = {
    "at": f"""to_char({_T}"at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
    "target": (f"""CASE WHEN {_T}"target_type" = '' THEN '' ELSE {_T}"target_type" || ':' || """
               f"""COALESCE(NULLIF({_T}"target_repr", ''), {_T}"target_id") END"""),
}


def _derived(row):
    row["at"] = format_at(row["at"])
    row["target"] = f"{row['target_type']}:{row['target_repr'] or row['target_id']}" if row["target_type"] else ""
    return row


def export_rows(queryset):
    """Events as export dicts in chain order, read through a server-side cursor in chunks: memory
    stays flat however many rows there are. Tuples, not model instances: several times faster."""
    names = EXPORT_COLUMNS
    for values in queryset.order_by("seq").values_list(*names).iterator(chunk_size=BATCH):
        yield _derived(dict(zip(names, values, strict=True)))


def _column_sql(name):
    return DERIVED_SQL.get(name) or f'{_T}"{name}"'


def _copy_supported():
    return connection.vendor == "postgresql"


def _copy(queryset, selects, options):
    """Stream `COPY (SELECT <selects> FROM the filtered events ORDER BY seq) TO STDOUT (<options>)` as
    text chunks of about CHUNK_BYTES: PostgreSQL formats the rows and Python only passes blocks on, so
    memory stays flat and the rate is close to a plain COPY's. Nothing when the filters match nothing."""

    names = [f"export_{index}" for index in range(len(selects))]
    # the expressions are this module's constants (column names and SQL literals); values come only as params
    columns = {name: RawSQL(select, []) for name, select in zip(names, selects, strict=True)}  # nosec B611
    try:
        sql, params = queryset.annotate(**columns).order_by("seq").values_list(*names).query.sql_with_params()
    except EmptyResultSet:
        return

    connection.ensure_connection()
    raw = connection.connection
    # bound here, client-side: COPY takes no server-side parameters
    with ClientCursor(raw) as binder:
        statement = binder.mogrify(f"COPY ({sql}) TO STDOUT ({options})", tuple(params))
    buffer = bytearray()
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for block in copy:
            buffer += block
            if len(buffer) >= CHUNK_BYTES:
                yield buffer.decode("utf-8")
                buffer.clear()
    if buffer:
        yield buffer.decode("utf-8")


# Each member of a JSON line as (placeholder, SQL) for PostgreSQL's format(): digits, JSON from jsonb
# and hex digests Gantry computed itself go in as they are; every other text through to_json
# (escaped). One format() call is ~1.5x faster than concatenating, ~2.5x faster than json_build_object.
_JSON_RAW = {"id": ("%s", "{}"), "seq": ("%s", "{}"), "actor_id": ("%s", "COALESCE({}::text, 'null')"),
             "changes": ("%s", "{}"), "detail": ("%s", "{}"), "prev_hash": ('"%s"', "{}"), "hash": ('"%s"', "{}"),
             "key_id": ('"%s"', "{}"), "at": ('"%s"', "{}")}


def _json_line_sql(names):
    members = [(name, *_JSON_RAW.get(name, ("%s", "to_json({})"))) for name in names]
    template = "{" + ",".join(f'"{name}":{placeholder}' for name, placeholder, _ in members) + "}"
    # %% because the statement goes through the driver's parameter binding (_copy: mogrify)
    template = template.replace("%", "%%")
    return f"format('{template}', " + ", ".join(sql.format(_column_sql(name)) for name, _, sql in members) + ")"


def _chunks(lines):
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
    """JSON lines in chain order, in text chunks; `audit_verify --file` checks an unfiltered export offline."""
    if _copy_supported():
        # CSV whose quote and delimiter are control characters JSON always escapes: each line is the
        # JSON text untouched (COPY's text format would double its backslashes)
        return _copy(queryset, [_json_line_sql((*EXPORT_COLUMNS, "target"))],
                     "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'")
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
    return _chunks(encode(row) + "\n" for row in export_rows(queryset))


def _cell(value):
    """Keep a spreadsheet from reading an attacker-chosen value (a username, say) as a formula."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def _cell_sql(expression):
    """_cell in SQL, and an empty text as an empty cell (as Python's csv writes it)."""
    starts = ", ".join("E'" + c.encode("unicode_escape").decode() + "'" for c in FORMULA_STARTS)
    return f"NULLIF(CASE WHEN left({expression}, 1) IN ({starts}) THEN '''' || {expression} ELSE {expression} END, '')"


def export_csv(queryset):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    header = buffer.getvalue()
    if _copy_supported():
        cells = [_column_sql(name) if name in ("id", "seq", "at") else _cell_sql(f"({_column_sql(name)})::text")
                 for name in CSV_COLUMNS]
        return _after(header, _copy(queryset, cells, "FORMAT csv"))
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode

    def lines():
        for row in export_rows(queryset):
            buffer.seek(0)
            buffer.truncate()
            row["changes"], row["detail"] = encode(row["changes"]), encode(row["detail"])
            writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
            yield buffer.getvalue()

    return _after(header, _chunks(lines()))


def _after(first, chunks):
    yield first
    yield from chunks


def chain_rows(chunk=5000):
    """Every event in the table as the field dicts `chain.verify_sequence` checks, in seq order.

    On PostgreSQL: a server-side cursor of plain tuples with `at` already formatted by the database
    (about six times less Python per row than a Django queryset), in one transaction, so the whole
    check reads one snapshot and memory stays flat. Elsewhere: a queryset iterator."""

    names = (*CANONICAL_FIELDS, "hash")
    if not _copy_supported():
        yield from (dict(zip(names, values, strict=True)) for values in
                    AuditEvent.objects.order_by("seq").values_list(*names).iterator(chunk_size=chunk))
        return
    columns = ", ".join(DERIVED_SQL["at"] if name == "at" else f'{_T}"{name}"' for name in names)
    loads = json.loads
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor(name="gantry_audit_verify") as cursor:
            cursor.itersize = chunk
            cursor.execute(f'SELECT {columns} FROM "audit_auditevent" ORDER BY "seq"')  # nosec B608  # constants only
            for values in cursor:
                row = dict(zip(names, values, strict=True))
                for name in ("changes", "detail"):  # Django has psycopg hand jsonb over as text
                    if isinstance(row[name], str):
                        row[name] = loads(row[name])
                yield row
