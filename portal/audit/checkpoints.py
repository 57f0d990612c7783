"""Signed checkpoints of the audit chain's head, kept where the database cannot change them.

Every few minutes (and on demand: `manage.py audit_checkpoint`) Gantry writes the head of the
chain (the number of events, the last seq and its hash) signed with GANTRY_AUDIT_KEY, to a
directory (GANTRY_AUDIT_CHECKPOINT_DIR: mount it from another system, or make it append-only)
or to S3 (GANTRY_AUDIT_CHECKPOINT_S3_BUCKET: a bucket with Object Lock), each checkpoint a new
object written with its own retention (compliance mode by default, so no one can change or delete
it before it expires; see `_retention`). Someone who can write SQL can then
still empty the table or delete its newest rows, but `audit_verify` compares the chain with the
latest checkpoint and reports it: the chain must reach the checkpoint's seq with the same hash.
"""
import hmac
import json
import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from portal.storage import StorageError, open_store

from .keys import current_key, key_for, sign
from .models import AuditEvent

PREFIX = "audit-checkpoint-"
logger = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint cannot be written, read or trusted; `str()` says why."""


def _canonical(body):
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _store():
    directory = getattr(settings, "GANTRY_AUDIT_CHECKPOINT_DIR", "")
    bucket = getattr(settings, "GANTRY_AUDIT_CHECKPOINT_S3_BUCKET", "")
    try:
        if bucket:
            return open_store({"kind": "s3", "bucket": bucket,
                               "endpoint_url": getattr(settings, "GANTRY_AUDIT_CHECKPOINT_S3_ENDPOINT", "") or None})
        if directory:
            return open_store({"kind": "local", "path": directory})
    except StorageError as exc:
        raise CheckpointError(str(exc)) from None
    return None


def configured():
    return bool(getattr(settings, "GANTRY_AUDIT_CHECKPOINT_DIR", "")
                or getattr(settings, "GANTRY_AUDIT_CHECKPOINT_S3_BUCKET", ""))


def head():
    """The chain's head as a checkpoint body (unsigned)."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return {"version": 1, "seq": last[0] if last else 0, "hash": last[1] if last else None,
            "count": AuditEvent.objects.count(), "at": timezone.now().isoformat()}


def write_checkpoint():
    """Sign and store the chain's head; returns the checkpoint written."""
    key_id, key = current_key()
    if key is None:
        raise CheckpointError("audit checkpoints are signed with GANTRY_AUDIT_KEY; set it first")
    store = _store()
    if store is None:
        raise CheckpointError("set GANTRY_AUDIT_CHECKPOINT_DIR or GANTRY_AUDIT_CHECKPOINT_S3_BUCKET to write "
                              "audit checkpoints")
    body = head() | {"key_id": key_id}
    checkpoint = body | {"signature": sign(key, _canonical(body))}
    data = json.dumps(checkpoint, sort_keys=True).encode()
    name = f"{PREFIX}{body['seq']:012d}-{timezone.now():%Y%m%dT%H%M%S%f}.json"

    try:
        retention = _retention(store)
        if retention:
            store.put_locked(name, data, *retention)
        else:
            store.upload(name, [data])
    except StorageError as exc:
        raise CheckpointError(f"the audit checkpoint could not be written: {exc}") from None
    return checkpoint


def _retention(store):
    """(mode, retain until) for a checkpoint in an Object Lock bucket, else None.

    Each checkpoint carries its own retention rather than relying on the bucket's default (which an
    admin of the bucket could shorten or remove): GANTRY_AUDIT_CHECKPOINT_LOCK_MODE (COMPLIANCE:
    nobody, not even the account's root, can delete or shorten it) for
    GANTRY_AUDIT_CHECKPOINT_RETENTION_DAYS, or the bucket's default period when that is longer."""
    if getattr(store, "kind", "") != "s3":
        return None
    lock = store.object_lock()
    if lock is None:
        logger.warning("audit checkpoints go to s3://%s, which has no Object Lock: they can be deleted", store.bucket)
        return None
    days = max(int(settings.GANTRY_AUDIT_CHECKPOINT_RETENTION_DAYS), lock["days"] or 0)
    return settings.GANTRY_AUDIT_CHECKPOINT_LOCK_MODE, timezone.now() + timedelta(days=days)


def write_checkpoint_if_configured():
    """Periodic: write a checkpoint when a key and a place are configured (else nothing)."""
    if configured() and current_key()[1] is not None:
        return write_checkpoint()["seq"]
    return None


def verify_checkpoint(checkpoint):
    """Raise CheckpointError unless `checkpoint` carries a valid signature of a known key."""
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    key = key_for(body.get("key_id") or "")
    if key is None:
        raise CheckpointError(f"the checkpoint is signed with audit key {body.get('key_id')!r}, which is not "
                              "configured (GANTRY_AUDIT_KEY or GANTRY_AUDIT_OLD_KEYS)")

    if not hmac.compare_digest(sign(key, _canonical(body)), str(checkpoint.get("signature", ""))):
        raise CheckpointError("the checkpoint's signature is wrong: it was altered or forged")
    return checkpoint


def latest_checkpoint():
    """The checkpoint with the highest seq (signature checked), or None when there is none."""
    store = _store()
    if store is None:
        return None

    try:
        names = sorted(key for key, _size in store.list(PREFIX) if key.endswith(".json"))
        if not names:
            return None
        checkpoint = json.loads(b"".join(store.download(names[-1])))
    except (StorageError, ValueError) as exc:
        raise CheckpointError(f"the latest audit checkpoint cannot be read: {exc}") from None
    return verify_checkpoint(checkpoint)


def compare_with_checkpoint(checkpoint):
    """Problems of the database's chain against a checkpoint, as sentences (empty: consistent)."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    at = checkpoint.get("at")
    if last < checkpoint["seq"]:
        if last == 0:
            return [f"the audit log is EMPTY, but the checkpoint of {at} saw {checkpoint['seq']} events: "
                    "the table was truncated"]
        return [f"the audit log ends at #{last}, but the checkpoint of {at} saw it reach #{checkpoint['seq']}: "
                f"{checkpoint['seq'] - last} newest event(s) were deleted"]
    if checkpoint["seq"]:
        row = AuditEvent.objects.filter(seq=checkpoint["seq"]).values_list("hash", flat=True).first()
        if row != checkpoint["hash"]:
            return [f"event #{checkpoint['seq']} does not have the hash the checkpoint of {at} recorded: "
                    "the chain was rewritten"]
    return []
