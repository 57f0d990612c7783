"""Every login and every failed login leaves an audit event."""
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from portal.audit.services import record


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    with transaction.atomic():
        record("auth.login", actor=user, request=request, target=user)


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        with transaction.atomic():
            record("auth.logout", actor=user, request=request, target=user)


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = (credentials or {}).get("username", "")
    with transaction.atomic():
        record(
            "auth.login_failed",
            actor=None,
            actor_name=username[:150] or "anonymous",
            request=request,
            outcome="denied",
            detail={"username": username[:150]},
        )
