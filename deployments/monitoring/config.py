"""An environment's verification settings: defaults, checking, saving (API ``verification``)."""
from __future__ import annotations

from string import Template

from django.db import transaction

from portal import prometheus
from portal.accounts import policies as account_policies
from portal.audit.writes import change_audited
from portal.errors import InvalidInput, deny_if
from portal.schema_types import Out

from .models import VerificationSettings, default_rules
from .schemas import Verification


def _defaults(environment):
    return {"auto_rollback": environment.tier != "development"}


def settings_for(environment):
    """The environment's settings (the defaults, unsaved, when it never had any)."""
    found = VerificationSettings.objects.filter(environment=environment).first()
    return found or VerificationSettings(environment=environment, **_defaults(environment))


def settings_for_many(environments):
    """settings_for over a list of environments in one query, in the same order."""
    found = {s.environment_id: s for s in VerificationSettings.objects.filter(environment__in=environments)}
    return [found.get(e.pk) or VerificationSettings(environment=e, **_defaults(e)) for e in environments]


class RuleOut(Out):
    name: str
    query: str
    op: str
    threshold: int | float
    for_seconds: int


class VerificationSettingsOut(Out):
    """`verification_out(settings)`: an environment's verification settings in the API."""

    window_seconds: int
    probe_interval_seconds: int
    failure_threshold: int
    auto_rollback: bool
    prometheus_url: str | None
    rules: list[RuleOut]
    unknown_rule: str
    require_verified_promotion: bool


def verification_out(settings):
    return {
        "window_seconds": settings.window_seconds,
        "probe_interval_seconds": settings.probe_interval_seconds,
        "failure_threshold": settings.failure_threshold,
        "auto_rollback": settings.auto_rollback,
        "prometheus_url": settings.prometheus_url or None,
        "rules": settings.rules,
        "unknown_rule": settings.unknown_rule,
        "require_verified_promotion": settings.require_verified_promotion,
    }


def render_query(query, namespace, service, deployment):
    return Template(query).safe_substitute(namespace=namespace, service=service, deployment=deployment)


def clean_verification(environment, data):
    """Check a ``verification`` object (deployments.monitoring.schemas.Verification); returns the fields
    to save. Rule queries are then checked by asking Prometheus (its own message comes back); raises
    InvalidInput with every problem found."""
    if not isinstance(data, dict):
        raise InvalidInput("verification: an object")
    clean = Verification.validated(data)
    current = settings_for(environment)
    url = clean.get("prometheus_url", current.prometheus_url)
    rules = clean.get("rules", current.rules if "prometheus_url" in clean else None)
    if url and rules:
        _check_with_prometheus(url, rules, environment)
    return clean


def _check_with_prometheus(url, rules, environment):
    problems = []
    for index, rule in enumerate(rules):
        expression = render_query(rule["query"], environment.namespace, "service", "deployment")
        message = prometheus.check_expression(url, expression)
        if message:
            problems.append(f"verification.rules[{index}].query ({rule['name']}): Prometheus refused it: {message}")
    if problems:
        raise InvalidInput(problems)


def update_verification(user, environment, data, request=None):
    """Save an environment's verification settings (admin), audited with what changed."""
    deny_if(account_policies.admin_refusal(user, "change an environment's verification", environment),
            "environment.verification_update", user=user, request=request, target=environment)
    clean = clean_verification(environment, data)
    with transaction.atomic():  # the row is made on the first change, with the tier's defaults
        settings, _ = VerificationSettings.objects.get_or_create(environment=environment,
                                                                 defaults=_defaults(environment))
        return change_audited(settings, clean, "environment.verification_update", snapshot=verification_out,
                              actor=user, request=request, target=environment)


__all__ = ["default_rules", "settings_for", "settings_for_many", "update_verification", "verification_out"]
