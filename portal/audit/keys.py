"""The audit chain's keys: HMAC-SHA-256 with a key that lives outside the database.

With a plain SHA-256 chain, anyone who can write SQL can rewrite an event and recompute every
hash after it. With GANTRY_AUDIT_KEY set, each event's hash is an HMAC under that key, so
rewriting needs the key, which is kept in the environment (a Kubernetes Secret, a vault), not
in the database. Each keyed event names its key by `key_id` (a fingerprint, never the key).
Rotating: set the new key as GANTRY_AUDIT_KEY and add the old one to GANTRY_AUDIT_OLD_KEYS
(comma-separated) so older events still verify; the first event written with the new key is
preceded by an `audit.key_rotated` event.
"""
import hashlib
import hmac

from django.conf import settings


def key_id_of(key):
    return hashlib.sha256(b"gantry-audit-key:" + key.encode("utf-8")).hexdigest()[:16]


def current_key():
    """(key_id, key bytes) of GANTRY_AUDIT_KEY, or ("", None) when the chain is not keyed."""
    key = getattr(settings, "GANTRY_AUDIT_KEY", "") or ""
    return (key_id_of(key), key.encode("utf-8")) if key else ("", None)


def known_keys():
    """{key_id: key bytes} of the current and the old keys."""
    keys = [getattr(settings, "GANTRY_AUDIT_KEY", "") or ""] + list(getattr(settings, "GANTRY_AUDIT_OLD_KEYS", []) or [])
    return {key_id_of(k): k.encode("utf-8") for k in keys if k}


def key_for(key_id):
    return known_keys().get(key_id)


def sign(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
