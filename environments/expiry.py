"""Time to live: extending an environment, telling its owner before it expires.

The reaper itself is ``teardown.expire_environments`` (it tears expired ones down through the
cluster and marks them `deleted`). The bounds are ``guardrails.extension_refusal``.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.accounts import policies as roles
from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, deny
from portal.jobs.services import enqueue_job

from . import guardrails
from .choices import EnvironmentStatus
from .models import Environment
from .schemas import Extension

# (notice, how long before expiry it goes out), latest first so one run sends only the most urgent.
NOTICES = (("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)))
LIVE = (EnvironmentStatus.PROVISIONING, EnvironmentStatus.READY, EnvironmentStatus.FAILED)


def may_extend(user, env):
    return env.owner_id == user.pk or roles.has_role(user, roles.ADMIN, env)


def extend_environment(user, env, hours, request=None, now=None):
    """Push the expiry `hours` later (owner or admin), never past the template's maximum; audited."""
    if not may_extend(user, env):
        deny("environment.extend", user=user, request=request, target=env,
             reason="only the environment's owner or an admin can extend it")
    hours = Extension.validated({"hours": hours})["hours"]
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=env.pk)
        refusal = guardrails.extension_refusal(env, hours, now)
        if refusal is None:
            before = env.expires_at
            env.expires_at = guardrails.new_expiry(env, hours, now)
            env.expiry_notices = []  # a new expiry gets its own notices
            env.save(update_fields=["expires_at", "expiry_notices", "updated_at"])
            record("environment.extend", actor=user, request=request, target=env,
                   changes={"expires_at": [before.isoformat(), env.expires_at.isoformat()]}, detail={"hours": hours})
    if refusal:  # audited outside the transaction, which changed nothing
        deny("environment.extend", user=user, request=request, target=env, reason=refusal,
             error=InvalidInput if refusal.startswith("hours:") else Conflict)
    return env


def due_notice(env, now):
    """The notice `env` should get now ("24h", "1h") or None."""
    if env.expires_at is None or env.expires_at <= now:
        return None
    for notice, before in NOTICES:
        if env.expires_at - now <= before:
            return None if notice in (env.expiry_notices or []) else notice
    return None


def notify_expiring(now=None):
    """Periodic: queue a notice to the owner 24 h and 1 h before an environment expires (once each)."""

    now = now or timezone.now()
    sent = 0
    soon = (Environment.objects.filter(expires_at__gt=now, expires_at__lte=now + NOTICES[-1][1], status__in=LIVE)
            .only("pk", "slug", "expires_at", "expiry_notices"))
    for env in soon:
        notice = due_notice(env, now)
        if notice is None:
            continue
        with transaction.atomic():
            locked = Environment.objects.select_for_update().get(pk=env.pk)
            if due_notice(locked, now) != notice:
                continue
            locked.expiry_notices = sorted(set(locked.expiry_notices or []) | {n for n, b in NOTICES
                                                                              if locked.expires_at - now <= b})
            locked.save(update_fields=["expiry_notices"])
            record("environment.expiry_notice", actor_name="gantry-scheduler", target=locked,
                   detail={"notice": notice, "expires_at": locked.expires_at.isoformat()})
            enqueue_job("environment.expiry_notice", target=locked, environment=locked,
                        params={"notice": notice})
        sent += 1
    return sent


def notice_text(env, notice):
    when = timezone.localtime(env.expires_at).strftime("%Y-%m-%d %H:%M %Z")
    text = (f"Environment {env.slug} ({env.tier}) expires in about {notice.replace('h', ' hour(s)')}, at {when}. "
            f"Its namespace {env.namespace} and everything in it will then be deleted.")
    maximum = (env.guardrails or {}).get("max_ttl_hours")
    text += f" Extend it from its page (up to {maximum} h from now)." if maximum else " Extend it from its page."
    base = getattr(settings, "GANTRY_BASE_URL", "")
    if base:
        text += f" {base.rstrip('/')}/environments/{env.slug}/"
    return text


def recipients(env):
    addresses = set()
    if env.owner_id and env.owner.email:
        addresses.add(env.owner.email)
    addresses |= {a.strip() for a in (env.notify_emails or "").split(",") if a.strip()}
    return sorted(addresses)
