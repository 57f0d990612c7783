"""The audit hash chain: canonical content, hashing and verification (also of exports)."""
import hashlib
import json
from datetime import UTC, datetime

from .keys import key_for, sign

GENESIS = "0" * 64

# The fields covered by the hash, in the order exports write them.
CANONICAL_FIELDS = (
    "seq", "at", "actor", "actor_id", "action", "outcome", "target_type", "target_id",
    "target_repr", "environment", "ip", "changes", "detail", "prev_hash", "key_id",
)


def format_at(value):
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields):
    """The hashed text. `key_id` is left out when empty, so events from before keying keep their hashes."""
    content = {name: fields.get(name) for name in CANONICAL_FIELDS}
    if not content.get("key_id"):
        content.pop("key_id")
    content["at"] = format_at(content["at"])
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(fields):
    """SHA-256 of the canonical content, or HMAC-SHA-256 under the key named by `key_id` (portal.audit.keys)."""
    key_id = fields.get("key_id")
    if key_id:
        key = key_for(key_id)
        if key is None:
            raise ChainError(fields.get("seq"), f"is signed with audit key {key_id}, which is not configured here "
                                                "(set GANTRY_AUDIT_KEY, or add the old key to GANTRY_AUDIT_OLD_KEYS)")
        return sign(key, canonical(fields))
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


def event_fields(event):
    return {name: getattr(event, name) for name in CANONICAL_FIELDS}


class ChainError(Exception):
    def __init__(self, seq, reason):
        self.seq = seq
        self.reason = reason
        super().__init__(f"audit event #{seq}: {reason}")


def verify_sequence(rows):
    """Check an iterable of field dicts in seq order; return the count, raise ChainError at the first bad one."""
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    previous_key = ""
    for fields in rows:
        seq = fields.get("seq")
        if seq != expected_seq:
            if isinstance(seq, int) and seq > expected_seq:
                raise ChainError(expected_seq, f"missing (the chain jumps from #{expected_seq - 1} to #{seq})")
            raise ChainError(seq, f"out of order (expected #{expected_seq})")
        key_id = fields.get("key_id") or ""
        if previous_key and not key_id:
            raise ChainError(seq, "is not keyed although the chain is keyed before it (it was rewritten without "
                                  "the key, or written while GANTRY_AUDIT_KEY was unset)")
        if key_id != previous_key and expected_seq > 1 and fields.get("action") != "audit.key_rotated":
            raise ChainError(seq, "changes the audit key without an audit.key_rotated event")
        previous_key = key_id
        if compute_hash(fields) != fields.get("hash"):
            raise ChainError(seq, "content does not match its hash (the row was changed)")
        if fields.get("prev_hash") != expected_prev:
            raise ChainError(seq, "prev_hash does not match the previous event's hash (an event before it was changed or removed)")
        expected_prev = fields["hash"]
        expected_seq += 1
        count += 1
    return count


def parse_datetime_utc(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
