"""Errors services raise; the API turns them into status codes, pages into messages."""
from django.db import transaction

from portal.audit.services import record, record_denied
from portal.validation import check_safe_text


class GantryError(Exception):
    status = 400

    def __init__(self, messages):
        if isinstance(messages, str):
            messages = [messages]
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))

    @property
    def detail(self):
        return self.messages[0] if len(self.messages) == 1 else self.messages


class InvalidInput(GantryError):
    status = 400


class Forbidden(GantryError):
    status = 403


class NotFound(GantryError):
    status = 404


class Conflict(GantryError):
    status = 409


def deny(action, *, user, request=None, reason, target=None, environment=None, error=Forbidden):
    """Audit a refused attempt (outcome `denied`) and raise `error` (Forbidden by default) with the reason
    (a sentence, or a list of them: one message each)."""
    record_denied(action, request=request, actor=user, target=target, environment=environment,
                  reason=reason if isinstance(reason, str) else "; ".join(reason))
    refusal = error(reason)
    refusal.audited = True
    raise refusal


def deny_if(refusal, action, *, user, **context):
    """`deny` with `refusal` as the reason when there is one (a policy's sentence, or None: go on)."""
    if refusal:
        deny(action, user=user, reason=refusal, **context)


def _audited(exception):
    seen = set()
    while exception is not None and id(exception) not in seen:
        if getattr(exception, "audited", False):
            return True
        seen.add(id(exception))
        exception = exception.__cause__ or exception.__context__
    return False


def audit_refusal(request, exception, reason, action="access.denied"):
    """The one audit of a refusal that no service audited: a 403 (an API call or a page, a read mostly,
    that the caller's role does not open: `access.denied`) or a 409 (`request.conflict`, see
    `audit_conflict`). One event with the refusal's own words, written at the edge after the
    service's transaction has rolled back; a refusal already audited by `deny` (the exception or
    what it was raised from) is not audited again."""
    if _audited(exception):
        return

    path = "".join(c for c in request.path[:300] if c.isprintable())
    with transaction.atomic():
        record(action, request=request, outcome="denied",
               detail={"reason": reason, "method": request.method, "path": path})
    exception.audited = True


def audit_conflict(request, exception):
    """Audit a Conflict (409) a service refused with: the state of things did not allow the attempt
    (a backup already running, a name taken, a deployment not in a state to approve...). Called
    where the API and the pages turn a Conflict into an answer."""
    audit_refusal(request, exception, "; ".join(exception.messages), action="request.conflict")


def refuse_unsafe(values):
    """Raise InvalidInput when a value of `values` ({field: text}) holds a character no field may hold
    (NUL, other control characters, unpaired surrogates, bidirectional overrides): the database
    cannot store or even compare some of them. Call it after the role check, so that a caller
    without the role still gets the audited 403."""

    errors = []
    for field, value in values.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            check_safe_text(item, field, errors, allow_newlines=True)
    if errors:
        raise InvalidInput(errors)


class Throttled(GantryError):
    """Too many attempts: 429, with the seconds to wait in `retry_after` (the Retry-After header)."""

    status = 429

    def __init__(self, messages, retry_after):
        super().__init__(messages)
        self.retry_after = int(retry_after)
