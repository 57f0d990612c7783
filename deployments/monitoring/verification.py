"""Verification after each deployment: a window of probes and Prometheus rules, then passed or failed.

``start_verification`` opens the window when a deployment succeeds. ``evaluate`` runs one step
(one probe of the new release through its Service plus Kubernetes readiness, and each PromQL
rule) and is called by the periodic ``verify_due`` for every verification whose next check is
due. A step holds the verification's row lock, so two workers never evaluate (or act on) the same
one. A failed verification rolls back by itself (monitoring.rollback) when the environment says so.
Every time is passed in (``now``), so tests drive the clock.
"""
from __future__ import annotations

import operator
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from deployments.choices import ROLLBACK
from deployments.choices import DeploymentState as S
from deployments.health import workload_of
from deployments.models import Deployment
from deployments.notifications import notify
from portal import prometheus
from portal.audit.services import record

from . import probing
from . import restarts as restart_window
from .config import render_query, settings_for
from .models import Verification
from .rollback import auto_rollback

OPS = {">": operator.gt, "<": operator.lt}
OPEN = ("pending", "running")


def target_deployment_name(deployment):
    """The Kubernetes Deployment serving this release (``web``, or ``web-green`` for blue-green)."""
    name = workload_of(deployment).deployments[0]
    return f"{name}-{deployment.color}" if deployment.color else name


def start_verification(deployment, now=None):
    """Open the verification window of a deployment that just succeeded (idempotent)."""
    now = now or timezone.now()
    existing = Verification.objects.filter(deployment=deployment).first()
    if existing is not None:
        return existing
    environment = deployment.environment
    settings = settings_for(environment)
    name = target_deployment_name(deployment)
    rules = []
    if settings.prometheus_url:
        rules = [{**rule, "query": render_query(rule["query"], environment.namespace, deployment.service.name, name),
                  "value": None, "state": "pending", "since": None, "detail": ""} for rule in settings.rules]
    snapshot = {"window_seconds": settings.window_seconds, "probe_interval_seconds": settings.probe_interval_seconds,
                "failure_threshold": settings.failure_threshold, "auto_rollback": settings.auto_rollback,
                "prometheus_url": settings.prometheus_url, "unknown_rule": settings.unknown_rule, "deployment_name": name}
    state, reason = "running", ""
    if environment.cluster_id is None:
        state, reason = "skipped", "the environment has no cluster to probe"
    with transaction.atomic():
        verification, created = Verification.objects.get_or_create(deployment=deployment, defaults=dict(
            state=state, reason=reason, started_at=now, ends_at=now + timedelta(seconds=settings.window_seconds),
            next_check_at=now, rules=rules, settings_snapshot=snapshot, finished_at=now if state == "skipped" else None))
        if created:
            record("deployment.verification_started", actor_name="gantry", target=deployment, environment=environment,
                   detail={"window_seconds": settings.window_seconds, "rules": [r["name"] for r in rules],
                           "metric_rules": "on" if settings.prometheus_url else "off (no Prometheus URL)"})
    return verification


def _superseded(deployment):
    """Why verifying this deployment no longer makes sense (a person rolled it back, a newer one runs), or None."""

    rollback = (deployment.rollbacks.exclude(state__in=[S.FAILED, S.CANCELLED, S.REJECTED]).order_by("pk").first())
    if rollback is not None:
        who = rollback.requested_by.get_username() if rollback.requested_by_id else "gantry"
        return f"{who} rolled it back (deployment #{rollback.pk}); the automatic rollback is not needed"
    if deployment.state != S.SUCCEEDED:
        return f"the deployment is {deployment.state.replace('_', ' ')}"
    newer = (Deployment.objects.filter(service_id=deployment.service_id, environment_id=deployment.environment_id,
                                       state=S.SUCCEEDED, finished_at__gt=deployment.finished_at).order_by("-finished_at").first())
    if newer is not None:
        return f"deployment #{newer.pk} replaced it"
    return None


def evaluate(verification_id, now=None):
    """One step of a verification; returns it (or None when another worker holds it or it is closed)."""
    now = now or timezone.now()
    with transaction.atomic():
        verification = (Verification.objects.select_for_update(skip_locked=True, of=("self",))
                        .select_related("deployment__environment__cluster", "deployment__service", "deployment__release")
                        .filter(pk=verification_id, state__in=OPEN).first())
        if verification is None:
            return None
        deployment = verification.deployment
        why_not = _superseded(deployment)
        if why_not:
            return _close(verification, "skipped", why_not, now)
        snapshot = verification.settings_snapshot
        threshold = snapshot["failure_threshold"]
        outcome = probing.probe_cell(deployment.environment, deployment, verification.consecutive_failures, threshold)
        verification.probes += 1
        verification.state = "running"
        failed_probe = not outcome.ok or outcome.status == "down" or restart_window.too_many(outcome.restarts)
        if outcome.status == "unknown":
            verification.last_probe = f"could not probe: {outcome.reason}"[:300]
        else:
            verification.consecutive_failures = verification.consecutive_failures + 1 if failed_probe else 0
            verification.last_probe = (outcome.reason or f"{deployment.service.health_path} answered OK"
                                       + (f" in {outcome.latency_ms} ms" if outcome.latency_ms is not None else ""))[:300]
        if verification.consecutive_failures >= threshold:
            return _fail(verification, outcome.reason, now, rule={
                "kind": "probe", "name": f"health probe {deployment.service.health_path}",
                "failure_threshold": threshold, "detail": verification.last_probe})
        breach, breached = _evaluate_rules(verification, snapshot.get("prometheus_url"), now)
        if breach:
            return _fail(verification, breach, now, rule=breached)
        if now >= verification.ends_at:
            unknown = [r for r in verification.rules if r["state"] == "unknown"]
            if unknown and snapshot.get("unknown_rule", "fail") == "fail":
                names = "; ".join(f"{r['name']}: {r['detail']}" for r in unknown)
                return _fail(verification, f"rules could not be evaluated ({names}); the environment treats that as a failure",
                             now, rule={"kind": "unknown_rules", "name": ", ".join(r["name"] for r in unknown),
                                        "detail": names})
            reason = f"passed: {verification.probes} probes, " + (
                "every rule within its threshold" if verification.rules else "no metric rules (no Prometheus URL)")
            if unknown:
                reason += "; ignored (could not be evaluated): " + "; ".join(f"{r['name']}: {r['detail']}" for r in unknown)
            return _close(verification, "passed", reason, now)
        verification.next_check_at = now + timedelta(seconds=snapshot["probe_interval_seconds"])
        verification.save()
        return verification


def _evaluate_rules(verification, url, now):
    """Query every rule; returns (reason, rule) of the first rule violated for its duration, else (None, None)."""
    breach = breached = None
    rules = []
    for rule in verification.rules:
        rule = dict(rule)
        try:
            value = prometheus.query(url, rule["query"])
        except prometheus.PrometheusError as error:
            rule.update(value=None, state="unknown", since=None, detail=error.message[:300])
            rules.append(rule)
            continue
        if value is None:
            rule.update(value=None, state="unknown", since=None, detail="no data for this release")
            rules.append(rule)
            continue
        rule["value"] = value
        if OPS[rule["op"]](value, rule["threshold"]):
            since = rule.get("since") or now.isoformat()
            held = (now - _parse(since)).total_seconds()
            rule.update(since=since, detail=f"{value:.4g} {rule['op']} {rule['threshold']:g} for {held:.0f} s of {rule['for_seconds']} s")
            if held >= rule["for_seconds"]:
                rule["state"] = "failed"
                breached = breached or {"kind": "metric", **{k: rule.get(k) for k in (
                    "name", "query", "op", "threshold", "for_seconds", "value", "detail")}}
                breach = breach or (f"{rule['name']} was {value:.4g} ({rule['op']} {rule['threshold']:g}) "
                                    f"for {held:.0f} s (limit {rule['for_seconds']} s)")
            else:
                rule["state"] = "breaching"
        else:
            rule.update(state="ok", since=None, detail=f"{value:.4g} within {rule['op']} {rule['threshold']:g}")
        rules.append(rule)
    verification.rules = rules
    return breach, breached


def _parse(value):
    return datetime.fromisoformat(value)


def _close(verification, state, reason, now, rule=None):
    verification.state, verification.reason, verification.finished_at = state, reason[:1000], now
    verification.save()
    deployment = verification.deployment
    record(f"deployment.verification_{state}", actor_name="gantry", target=deployment, environment=deployment.environment,
           outcome="failure" if state == "failed" else "success",
           detail={"reason": reason[:500]} | ({"rule": rule} if rule else {}))
    return verification


def _fail(verification, reason, now, rule=None):
    """Close the verification as failed; `rule` is the check that failed (probe, metric rule, unknown rules),
    recorded with the failure and with the automatic rollback it triggers."""

    _close(verification, "failed", reason, now, rule)
    deployment = verification.deployment

    notify(deployment, "verification_failed")
    if deployment.kind == ROLLBACK:
        record("deployment.auto_rollback_refused", actor_name="gantry", target=deployment, environment=deployment.environment,
               outcome="failure", detail={"reason": "a rollback that fails its verification is not rolled back again; "
                                                    "a person must decide"})
    elif verification.settings_snapshot.get("auto_rollback"):
        auto_rollback(deployment.pk, f"verification failed: {reason}", rule=rule)
    return verification


# --- periodic -----------------------------------------------------------------------------------


def start_missing(now=None, hours=1):
    """Open the verification of recent successful deployments that have none (a worker died in between)."""

    now = now or timezone.now()
    missing = (Deployment.objects.select_related("environment", "service")
               .filter(state=S.SUCCEEDED, finished_at__gte=now - timedelta(hours=hours), verification__isnull=True))
    return [start_verification(d, now=now) for d in missing]


def verify_due(now=None):
    """Periodic (queue ``health``): step every open verification whose next check is due."""
    now = now or timezone.now()
    start_missing(now)
    count = 0
    for pk in Verification.objects.filter(state__in=OPEN, next_check_at__lte=now).order_by("next_check_at").values_list("pk", flat=True):
        count += evaluate(pk, now=timezone.now()) is not None
    return count
