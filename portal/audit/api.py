import base64
from typing import Any

from ninja import Router

from portal.errors import InvalidInput
from portal.schema_types import Out, Timestamp
from portal.validation import list_limit

from .models import AuditEvent
from .downloads import stream_export
from .queries import FilterError, event_as_dict, filter_events, require_auditor
from .readable import target_url, target_words

router = Router(tags=["audit"])
PAGE = 100


def _filtered(request):
    require_auditor(request.user)
    try:
        return filter_events(request.GET)
    except FilterError as exc:
        raise InvalidInput(str(exc)) from None


class AuditEventOut(Out):
    id: int
    seq: int
    at: Timestamp
    actor: str
    action: str
    outcome: str
    target: str | None
    target_type: str | None
    target_id: str | None
    environment: str | None
    ip: str | None
    changes: dict[str, Any]
    detail: dict[str, Any]
    hash: str
    prev_hash: str
    target_text: str | None
    target_url: str | None


class AuditPageOut(Out):
    """Newest first; `next` is the cursor of the following page (null on the last one)."""

    results: list[AuditEventOut]
    next: str | None


def _api_event(event):
    data = event_as_dict(event)
    return {
        "id": data["id"], "seq": data["seq"], "at": event.at.isoformat(), "actor": data["actor"],
        "action": data["action"], "outcome": data["outcome"], "target": data["target"] or None,
        "target_type": data["target_type"] or None, "target_id": data["target_id"] or None,
        "environment": data["environment"] or None, "ip": data["ip"] or None,
        "changes": data["changes"], "detail": data["detail"], "hash": data["hash"], "prev_hash": data["prev_hash"],
        "target_text": target_words(event) or None, "target_url": target_url(event) or None,
    }


@router.get("/audit", response=AuditPageOut)
def list_audit(request, actor: str | None = None, action: str | None = None, environment: str | None = None,
               outcome: str | None = None, since: str | None = None, until: str | None = None,
               cursor: str | None = None, limit: int = PAGE, hide_system: str | None = None,
               seq: int | None = None, target: str | None = None):
    qs = _filtered(request).order_by("-seq")
    if cursor:
        try:
            before = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("cursor: not a cursor this API returned; start again without it") from None
        qs = qs.filter(seq__lt=before)
    limit = list_limit(limit)
    events = list(qs[: limit + 1])
    more = len(events) > limit
    events = events[:limit]
    next_cursor = base64.urlsafe_b64encode(str(events[-1].seq).encode()).decode() if more else None
    return {"results": [_api_event(e) for e in events], "next": next_cursor}


@router.get("/audit/export", response={200: None})
def export_audit(request, format: str = "jsonl", actor: str | None = None, action: str | None = None,
                 environment: str | None = None, outcome: str | None = None, since: str | None = None,
                 until: str | None = None, hide_system: str | None = None, target: str | None = None):
    return stream_export(request, _filtered(request), format)


__all__ = ["router", "AuditEvent", "stream_export"]
