"""API authentication: bearer tokens (hashed at rest) and browser sessions (with CSRF)."""
from django.db import transaction
from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from portal.accounts import policies as roles
from portal.accounts.models import ApiToken, hash_token
from portal.audit.services import record
from portal.errors import Forbidden, NotFound, refuse_unsafe
from portal.validation import unsafe_character


def check_request_text(request):
    """Once the caller is known: a path holding a character no name can hold names nothing (404), and
    such a character in the query string is invalid input (400), before any view queries with it."""
    if unsafe_character(request.path, allow_newlines=True):
        raise NotFound("no such object: the path holds a character no name in Gantry can hold")
    refuse_unsafe({key: request.GET.getlist(key) for key in request.GET})


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        found = (
            ApiToken.objects.select_related("user")
            .filter(digest=hash_token(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if found is None:
            with transaction.atomic():
                record("auth.token_rejected", actor_name="anonymous", request=request, outcome="denied",
                       detail={"token_prefix": token[:8]})
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
