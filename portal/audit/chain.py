"""The audit hash chain: canonical content, hashing and verification (also of exports)."""
import hashlib
import json
from datetime import datetime, UTC

GENESIS = "0" * 64

# The fields covered by the hash, in the order exports write them.
CANONICAL_FIELDS = (
    "seq", "at", "actor", "actor_id", "action", "outcome", "target_type", "target_id",
    "target_repr", "environment", "ip", "changes", "detail", "prev_hash",
)


def format_at(value):
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields):
    content = {name: fields.get(name) for name in CANONICAL_FIELDS}
    content["at"] = format_at(content["at"])
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(fields):
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
    for fields in rows:
        seq = fields.get("seq")
        if seq != expected_seq:
            if isinstance(seq, int) and seq > expected_seq:
                raise ChainError(expected_seq, f"missing (the chain jumps from #{expected_seq - 1} to #{seq})")
            raise ChainError(seq, f"out of order (expected #{expected_seq})")
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
