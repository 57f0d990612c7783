"""Retention: audit events older than GANTRY_AUDIT_RETENTION_DAYS move to JSONL segments.

Each segment is written to the archive store (a local directory by default), read back and verified
against the chain, recorded as an `ArchiveSegment` row (its checkpoint: first and last event, the
hash the first one follows and the last one's hash, the file's SHA-256), and only then are its
events deleted from the hot table, in the same transaction that records the segment and an
`audit.archived` event. The append-only trigger lets a DELETE through only on that path: inside a
transaction that set `gantry.audit_archiving`, and for events a recorded segment covers.
`audit_verify` then checks archive + database as one chain.
"""
import hashlib
import json
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from portal.jobs.models import Job
from portal.jobs.services import enqueue_job
from portal.storage import StorageError, open_store

from .chain import GENESIS, ChainError, compute_hash
from .models import ArchiveSegment, AuditEvent
from .queries import export_jsonl
from .services import record

SEGMENT_EVENTS = 10000


class ArchiveError(Exception):
    pass


def destination():
    """Where segments go: GANTRY_AUDIT_ARCHIVE (a destination dict as for backups: local or S3, through
    portal.storage), else the local directory GANTRY_AUDIT_ARCHIVE_DIR (default .audit-archive/)."""
    configured = getattr(settings, "GANTRY_AUDIT_ARCHIVE", None)
    if configured:
        return dict(configured)
    root = getattr(settings, "GANTRY_AUDIT_ARCHIVE_DIR", "") or Path(settings.BASE_DIR) / ".audit-archive"
    return {"kind": "local", "path": str(root)}


def store(where=None):
    """(store, key prefix) for a destination (default: the configured one)."""

    where = where or destination()
    if where["kind"] == "local":
        Path(where["path"]).mkdir(parents=True, exist_ok=True)
    credentials = {k: where[k] for k in ("access_key_id", "secret_access_key") if where.get(k)}
    return open_store(where, credentials), (where.get("prefix") or "").strip("/")


def store_for(segment):
    """The store a segment was written to: its kind and bucket or directory come from its location;
    an S3 endpoint and keys from today's configuration."""
    if segment.store == "local":
        path = segment.location.removeprefix("file://")
        return store({"kind": "local", "path": str(Path(path).parent)})[0], Path(path).name
    bucket, _, key = segment.location.removeprefix("s3://").partition("/")
    where = {k: v for k, v in destination().items() if k not in ("bucket", "prefix", "path")}
    return store(where | {"kind": "s3", "bucket": bucket})[0], key


def _read(target, key):
    return b"".join(target.download(key))


def _segment_name(first, last):
    return f"audit-{first:012d}-{last:012d}.jsonl"


def archive_old_events(log=print, now=None, retention_days=None, segment_events=SEGMENT_EVENTS, limit_segments=None):
    """Archive every event older than the retention, a segment at a time. Returns the segments written."""
    retention_days = retention_days if retention_days is not None else settings.GANTRY_AUDIT_RETENTION_DAYS
    if not retention_days:
        log("audit retention is off (GANTRY_AUDIT_RETENTION_DAYS is not set); nothing to archive")
        return []
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    target = store()
    written = []
    while limit_segments is None or len(written) < limit_segments:
        segment = _archive_one(target, cutoff, segment_events, log)
        if segment is None:
            break
        written.append(segment)
    log(f"{len(written)} segment(s) archived; events before {cutoff.isoformat()} are now in the archive")
    return written


def _archive_one(destination, cutoff, segment_events, log):  # destination: (store, key prefix)
    # The oldest events still in the table, never past the cutoff, and never the newest event (the
    # chain head stays in the database so new events keep linking to it).
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    rows = AuditEvent.objects.filter(at__lt=cutoff).exclude(seq=head).order_by("seq")
    bounds = list(rows.values_list("seq", flat=True)[:segment_events])
    if not bounds:
        return None
    first, last = bounds[0], bounds[-1]
    if last - first + 1 != len(bounds):
        raise ArchiveError(f"events #{first}-#{last} have gaps; run audit_verify before archiving")
    previous = ArchiveSegment.objects.order_by("-last_seq").first()
    expected_first = previous.last_seq + 1 if previous else 1
    if first != expected_first:
        raise ArchiveError(f"the oldest event in the table is #{first}, but the archive ends at #{expected_first - 1}")
    segment_rows = AuditEvent.objects.filter(seq__gte=first, seq__lte=last)
    data = "".join(export_jsonl(segment_rows)).encode("utf-8")
    lines = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    first_prev = lines[0]["prev_hash"]
    _verify_segment(lines, first, first_prev if previous else GENESIS, previous)
    target, prefix = destination
    key = f"{prefix}/{_segment_name(first, last)}" if prefix else _segment_name(first, last)
    target.upload(key, iter([data]))
    location = target.location(key)
    if _read(target, key) != data:
        raise ArchiveError(f"the archive copy at {location} does not read back the same; nothing was removed")
    digest = hashlib.sha256(data).hexdigest()

    with transaction.atomic():
        segment = ArchiveSegment.objects.create(
            first_seq=first, last_seq=last, count=len(lines), first_prev_hash=first_prev,
            last_hash=lines[-1]["hash"], sha256=digest, location=location, store=target.kind,
            first_at=lines[0]["at"], last_at=lines[-1]["at"])
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL gantry.audit_archiving = 'on'")
        deleted, _ = AuditEvent.objects.filter(seq__gte=first, seq__lte=last).delete()
        if deleted != len(lines):
            raise ArchiveError(f"expected to remove {len(lines)} events, removed {deleted}; nothing was removed")
        record("audit.archived", actor_name="gantry-archiver",
               detail={"first_seq": first, "last_seq": last, "count": len(lines), "sha256": digest,
                       "location": location, "last_hash": segment.last_hash})
    log(f"archived events #{first}-#{last} ({len(lines)}) to {location}, sha256 {digest}")
    return segment


def _verify_segment(lines, first, first_prev, previous):
    if previous is not None and first_prev != previous.last_hash:
        raise ArchiveError(f"event #{first} does not follow the archive's last event #{previous.last_seq}")
    try:
        _verify_from(lines, first, first_prev)
    except ChainError as exc:
        raise ArchiveError(f"not archiving a broken chain: {exc}") from exc


def _verify_from(rows, first_seq, first_prev):
    """Like chain.verify_sequence, for a run of events that starts at `first_seq` after `first_prev`."""
    expected_seq, expected_prev, count = first_seq, first_prev, 0
    for fields in rows:
        seq = fields.get("seq")
        if seq != expected_seq:
            raise ChainError(expected_seq, f"missing or out of order (found #{seq})")
        if compute_hash(fields) != fields.get("hash"):
            raise ChainError(seq, "content does not match its hash (the row was changed)")
        if fields.get("prev_hash") != expected_prev:
            raise ChainError(seq, "prev_hash does not match the previous event's hash")
        expected_prev, expected_seq, count = fields["hash"], seq + 1, count + 1
    return count


def archived_rows():
    """Every archived event in chain order, each segment checked against its recorded SHA-256."""
    for segment in ArchiveSegment.objects.order_by("first_seq"):
        try:
            target, key = store_for(segment)
            data = _read(target, key)
        except (StorageError, OSError) as exc:
            raise ChainError(segment.first_seq, f"archive segment {segment.location} cannot be read: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != segment.sha256:
            raise ChainError(segment.first_seq, f"archive segment {segment.location} was changed (its SHA-256 "
                                                "no longer matches the checkpoint)")
        count = 0
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                count += 1
                yield json.loads(line)
        if count != segment.count:
            raise ChainError(segment.first_seq, f"archive segment {segment.location} holds {count} events, "
                                                f"its checkpoint says {segment.count}")


def enqueue_archiving():
    """Periodic: start the archiving job when retention is on and some event is past it (else nothing,
    so the log does not fill with empty runs). Returns the job or None."""
    days = settings.GANTRY_AUDIT_RETENTION_DAYS
    if not days:
        return None
    cutoff = timezone.now() - timedelta(days=days)
    if not AuditEvent.objects.filter(at__lt=cutoff).exists():
        return None

    if Job.objects.filter(kind="audit.archive", state__in=["queued", "running"]).exists():
        return None
    with transaction.atomic():
        return enqueue_job("audit.archive")
