"""API authentication: bearer tokens (hashed at rest) and browser sessions (with CSRF)."""
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from portal import throttle
from portal.accounts import policies as roles
from portal.accounts.models import ApiToken, hash_token
from portal.audit.services import client_ip, record
from portal.errors import Forbidden, NotFound, Throttled, refuse_unsafe
from portal.validation import unsafe_character

logger = logging.getLogger(__name__)


def check_request_text(request):
    """Once the caller is known: a path holding a character no name can hold names nothing (404), and
    such a character in the query string is invalid input (400), before any view queries with it."""
    if unsafe_character(request.path, allow_newlines=True):
        raise NotFound("no such object: the path holds a character no name in Gantry can hold")
    refuse_unsafe({key: request.GET.getlist(key) for key in request.GET})


def reject_token(request, token):
    """Count a failed bearer token against the client's address, and audit the window once.

    The first failure of each window writes the window's one audit event (`auth.token_rejected`,
    saying the limit and when the window ends); the others are only counted, and past the limit the
    address gets 429 with Retry-After until the window ends. A flood of made-up tokens thus costs
    one counter update each, never a second audit row (nor the chain lock) for that address and
    window; the server log notes when an address reaches the limit."""

    seconds, limit = settings.GANTRY_TOKEN_FAILURE_WINDOW_SECONDS, settings.GANTRY_TOKEN_FAILURES_PER_WINDOW
    address = client_ip(request) or "unknown"
    window = throttle.hit(f"token:{address}", seconds)
    if window.count == 1:
        with transaction.atomic():
            record("auth.token_rejected", actor_name="anonymous", request=request, outcome="denied",
                   detail={"token_prefix": token[:8], "window_seconds": seconds, "limit": limit,
                           "window_ends_at": window.ends_at.isoformat(),
                           "note": f"the one event of this address's window: later failures are counted, not "
                                   f"recorded, and past {limit} the address is refused (429) until the window ends"})
    if window.count > limit:
        if window.count == limit + 1:
            logger.warning("bearer tokens: %s failed more than %s times in %s s; refused until %s",
                           address, limit, seconds, window.ends_at.isoformat())
        raise Throttled(f"too many failed tokens from your address; try again in {window.retry_after} s",
                        retry_after=window.retry_after)


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        found = (
            ApiToken.objects.select_related("user")
            .filter(digest=hash_token(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if found is None:
            reject_token(request, token)
            return None
        now = timezone.now()
        if found.last_used_at is None or (now - found.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        request.user = found.user
        check_request_text(request)
        return found.user


class CheckedSessionAuth(SessionAuth):
    """Browser sessions (with CSRF), with the same checks of the request's text as tokens."""

    def authenticate(self, request, key):
        user = super().authenticate(request, key)
        if user is not None:
            check_request_text(request)
        return user


API_AUTH = [TokenAuth(), CheckedSessionAuth()]


def require_role(request):
    """API calls need a role in Gantry (any role, anywhere); a 403 with what to do otherwise."""
    if not roles.has_any_role(request.user):
        raise Forbidden("you have no role in Gantry yet; ask an admin to grant you one")
