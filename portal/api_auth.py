"""API authentication: bearer tokens (hashed at rest) and browser sessions (with CSRF)."""
from django.db import transaction
from django.utils import timezone
from ninja.security import HttpBearer, django_auth

from portal.accounts import policies as roles
from portal.accounts.models import ApiToken, hash_token
from portal.audit.services import record
from portal.errors import Forbidden


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
        return found.user


API_AUTH = [TokenAuth(), django_auth]


def require_role(request):
    """API calls need a role in Gantry (any role, anywhere); a 403 with what to do otherwise."""
    if not roles.has_any_role(request.user):
        raise Forbidden("you have no role in Gantry yet; ask an admin to grant you one")
