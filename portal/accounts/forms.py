from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction

from portal import throttle
from portal.audit.services import client_ip, record


class ThrottledAuthenticationForm(AuthenticationForm):
    """Sign-in that stops guessing without letting anyone lock a user out.

    Two counters per window of GANTRY_LOGIN_WINDOW_MINUTES: attempts at a username from one
    address (GANTRY_LOGIN_MAX_FAILURES) and attempts from one address at any username
    (GANTRY_LOGIN_MAX_FAILURES_PER_ADDRESS, against spraying many names). Each attempt takes its
    number atomically before the password is checked, so parallel guesses cannot slip past the
    limit; a right password clears its (username, address) counter and is taken back from the
    address's. Wrong guesses from one address never block the same user from another address.
    The first refusal of a window is audited (`auth.login_throttled`); each checked failure is
    audited by the sign-in signal (`auth.login_failed`).
    """

    def clean(self):
        username = (self.cleaned_data.get("username") or "")[:150]
        if not username or not self.cleaned_data.get("password"):
            return super().clean()
        seconds = settings.GANTRY_LOGIN_WINDOW_MINUTES * 60
        address = client_ip(self.request) or "unknown"
        pair = f"login:{address}:{username.lower()}"
        per_address = f"login-address:{address}"
        user_window = throttle.hit(pair, seconds)
        address_window = throttle.hit(per_address, seconds)
        over = [(w, limit, why) for w, limit, why in (
            (user_window, settings.GANTRY_LOGIN_MAX_FAILURES, "for this username from your address"),
            (address_window, settings.GANTRY_LOGIN_MAX_FAILURES_PER_ADDRESS, "from your address"))
            if w.count > limit]
        if over:
            window, limit, why = over[0]
            if window.count == limit + 1:
                with transaction.atomic():
                    record("auth.login_throttled", actor_name=username, request=self.request, outcome="denied",
                           detail={"reason": f"more than {limit} sign-in attempts {why} within "
                                             f"{settings.GANTRY_LOGIN_WINDOW_MINUTES} minutes"})
            minutes = max(1, round(window.retry_after / 60))
            raise forms.ValidationError(
                f"Too many failed sign-ins {why}. Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
                "or ask an admin.", code="throttled")
        cleaned = super().clean()  # checks the password; a wrong one raises and stays counted
        throttle.clear(pair)
        throttle.forgive(per_address, seconds)
        return cleaned
