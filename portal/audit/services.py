"""Writing audit events. Call `record` inside the transaction of the change it describes."""
import json
import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from .chain import GENESIS, compute_hash
from .keys import current_key
from .models import AuditEvent

# Advisory lock id for the chain's head on PostgreSQL (any constant shared by all writers).
CHAIN_LOCK_ID = 0x6A6E7472  # "gntr"

SECRET_KEY_PATTERN = re.compile(r"(token|password|passwd|secret|kubeconfig|ca_data|private|credential|api_key|webhook)", re.I)
MASK = "***"


def mask_secrets(value):
    """Replace the values of secret-looking keys by *** (recursively), and make the value JSON-native."""
    if isinstance(value, dict):
        return {
            str(k): (MASK if SECRET_KEY_PATTERN.search(str(k)) and v not in (None, "", False) else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value else None
    return str(value)


def client_ip(request):
    if request is None:
        return ""

    if settings.GANTRY_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:45]
    return (request.META.get("REMOTE_ADDR") or "")[:45]


def diff(before, after):
    """{field: [old, new]} for the fields whose value changed."""
    changed = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new or (old in (None, "", [], {}) and new in (None, "", [], {})):
            continue  # unchanged, or empty on both sides (a create need not list every blank field)
        changed[key] = [old, new]
    return changed


def _lock_chain_head():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_ID])
    # SQLite: transactions start with BEGIN IMMEDIATE (settings), so one writer at a time already.


def record(action, *, actor=None, actor_name=None, request=None, outcome="success", target=None,
           target_type=None, environment=None, changes=None, detail=None):
    """Append one event to the chain, in the caller's transaction.

    `actor` is a user (or None for the system); `target` a model instance or None; `environment`
    an Environment, a slug or None. Values under secret-looking keys are masked.
    """
    fields = _event_fields(action, actor=actor, actor_name=actor_name, request=request, outcome=outcome, target=target,
                           target_type=target_type, environment=environment, changes=changes, detail=detail)
    return _append([fields])[0]


def record_many(events):
    """Append several events at once (one chain lock, one insert), in the caller's transaction.

    `events`: one dict per event of `record`'s arguments (``action`` included). For work that
    changes many things in one transaction (the health probe's status changes of a shard).
    """
    if not events:
        return []
    return _append([_event_fields(**event) for event in events])


def _event_fields(action, *, actor=None, actor_name=None, request=None, outcome="success", target=None,
                  target_type=None, environment=None, changes=None, detail=None):
    """An event's own fields (everything but its place in the chain)."""
    if actor is None and getattr(request, "user", None) is not None and request.user.is_authenticated:
        actor = request.user
    if actor is not None and getattr(actor, "is_authenticated", False):
        name, actor_pk = actor.get_username(), actor.pk
    else:
        name, actor_pk = (actor_name or "system"), None

    env_slug = ""
    if environment is not None:
        env_slug = environment if isinstance(environment, str) else environment.slug
    elif target is not None and target.__class__.__name__ == "Environment":
        env_slug = target.slug

    t_type, t_id, t_repr = "", "", ""
    if target is not None:
        t_type = target_type or target._meta.label_lower
        t_id = str(target.pk)
        t_repr = str(target)[:255]
    return {
        "actor": name[:150],
        "actor_id": actor_pk,
        "action": action,
        "outcome": outcome,
        "target_type": t_type,
        "target_id": t_id,
        "target_repr": t_repr,
        "environment": env_slug,
        "ip": client_ip(request),
        "changes": json.loads(json.dumps(mask_secrets(changes or {}))),
        "detail": json.loads(json.dumps(mask_secrets(detail or {}))),
    }


def _append(events):
    """Chain the events after the head (seq, prev_hash, key, hash) and insert them; returns the AuditEvents."""
    with transaction.atomic():
        _lock_chain_head()
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash", "key_id", "at").first()
        seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS)
        # Time never goes back along the chain (a clock stepped back, writers a few ms apart): the log's
        # time filters turn a time range into a seq range (queries.filter_events), which needs it.
        at = max(timezone.now(), head[3]) if head else timezone.now()
        key_id, _key = current_key()
        if head and head[2] and not key_id:
            raise ImproperlyConfigured("the audit chain is keyed (HMAC) but GANTRY_AUDIT_KEY is not set: set it "
                                       "again; unkeyed events would break the chain")
        rows = []
        if head and key_id and head[2] != key_id:
            rotation = {"seq": seq, "at": at, "actor": "gantry", "actor_id": None,
                        "action": "audit.key_rotated", "outcome": "success", "target_type": "", "target_id": "",
                        "target_repr": "", "environment": "", "ip": "", "changes": {},
                        "detail": {"from_key": head[2] or None, "to_key": key_id}, "prev_hash": prev_hash,
                        "key_id": key_id}
            rotation["hash"] = compute_hash(rotation)
            rows.append(AuditEvent(**rotation))
            seq, prev_hash = seq + 1, rotation["hash"]
        created = []
        for event in events:
            at = max(timezone.now(), at)
            fields = {"seq": seq, "at": at, **event, "prev_hash": prev_hash, "key_id": key_id}
            fields["hash"] = compute_hash(fields)
            created.append(AuditEvent(**fields))
            seq, prev_hash = seq + 1, fields["hash"]
        if len(rows) + len(created) == 1:
            created[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(rows + created)
        return created


def record_denied(action, *, request=None, actor=None, target=None, environment=None, reason=""):
    """Audit a refused attempt (the refused change itself never happens).

    Call it outside any transaction that will roll back: inside one it is only a savepoint and
    would vanish with the refused change. Services refuse before they open their transaction."""
    with transaction.atomic():
        return record(action, actor=actor, request=request, outcome="denied", target=target,
                      environment=environment, detail={"reason": reason})
