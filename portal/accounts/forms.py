from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.audit.services import record


class ThrottledAuthenticationForm(AuthenticationForm):
    """Sign-in that stops guessing: after GANTRY_LOGIN_MAX_FAILURES failed sign-ins for a username
    within GANTRY_LOGIN_WINDOW_MINUTES, that username is refused (and the refusal audited) until
    the window has passed. The failures counted are the audit log's own `auth.login_failed` events."""

    def clean(self):
        username = (self.cleaned_data.get("username") or "")[:150]
        if username:
            window = timedelta(minutes=settings.GANTRY_LOGIN_WINDOW_MINUTES)
            failures = AuditEvent.objects.filter(action="auth.login_failed", actor=username,
                                                 at__gte=timezone.now() - window).count()
            if failures >= settings.GANTRY_LOGIN_MAX_FAILURES:
                with transaction.atomic():
                    record("auth.login_throttled", actor_name=username, request=self.request, outcome="denied",
                           detail={"reason": f"{failures} failed sign-ins within "
                                             f"{settings.GANTRY_LOGIN_WINDOW_MINUTES} minutes"})
                raise forms.ValidationError(
                    f"Too many failed sign-ins for this username. Try again in "
                    f"{settings.GANTRY_LOGIN_WINDOW_MINUTES} minutes, or ask an admin.", code="throttled")
        return super().clean()
