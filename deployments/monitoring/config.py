"""An environment's verification settings: defaults, checking, saving (API ``verification``)."""
from __future__ import annotations

from string import Template
from urllib.parse import urlsplit

from django.db import transaction

from portal import prometheus
from portal.accounts import policies as account_policies
from portal.audit.services import diff, record
from portal.errors import InvalidInput, deny
from portal.schema_types import Out

from .models import VerificationSettings, default_rules

FIELDS = ("window_seconds", "probe_interval_seconds", "failure_threshold", "auto_rollback", "prometheus_url", "rules",
          "unknown_rule", "require_verified_promotion")
RULE_FIELDS = {"name", "query", "op", "threshold", "for_seconds"}
PLACEHOLDERS = {"namespace", "service", "deployment"}


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


def _integer(data, key, low, high, errors):
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.append(f"verification.{key}: a whole number from {low} to {high}")
        return None
    return value


def clean_verification(environment, data):  # noqa: C901  (landed before the lint; one check per verification field, to become a declared schema)
    """Check a ``verification`` object; returns the fields to save. Rule queries are checked by asking
    Prometheus (its own message comes back); raises InvalidInput with every problem found."""
    if not isinstance(data, dict):
        raise InvalidInput("verification: an object")
    errors, clean = [], {}
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        errors.append(f"verification: unknown fields {', '.join(unknown)}; use {', '.join(FIELDS)}")
    bounds = {"window_seconds": (10, 86400), "probe_interval_seconds": (1, 3600), "failure_threshold": (1, 100)}
    for key, (low, high) in bounds.items():
        if key in data:
            clean[key] = _integer(data, key, low, high, errors)
    for key in ("auto_rollback", "require_verified_promotion"):
        if key in data:
            if not isinstance(data[key], bool):
                errors.append(f"verification.{key}: true or false")
            clean[key] = data[key]
    if "unknown_rule" in data:
        if data["unknown_rule"] not in ("fail", "ignore"):
            errors.append("verification.unknown_rule: 'fail' (a rule Prometheus cannot answer fails the verification) or 'ignore'")
        clean["unknown_rule"] = data["unknown_rule"]
    if "prometheus_url" in data:
        url = data["prometheus_url"] or ""
        if url:
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 300:
                errors.append("verification.prometheus_url: an http(s) URL such as http://prometheus:9090, or null")
        clean["prometheus_url"] = url
    if "rules" in data:
        clean["rules"] = _clean_rules(data["rules"], errors)
    if errors:
        raise InvalidInput(errors)
    current = settings_for(environment)
    url = clean.get("prometheus_url", current.prometheus_url)
    rules = clean.get("rules", current.rules if "prometheus_url" in clean else None)
    if url and rules:
        _check_with_prometheus(url, rules, environment)
    return clean


def _clean_rules(rules, errors):
    if not isinstance(rules, list):
        errors.append("verification.rules: a list of {name, query, op, threshold, for_seconds}")
        return []
    clean, names = [], set()
    for index, rule in enumerate(rules):
        where = f"verification.rules[{index}]"
        if not isinstance(rule, dict):
            errors.append(f"{where}: an object {{name, query, op, threshold, for_seconds}}")
            continue
        missing, extra = sorted(RULE_FIELDS - set(rule) - {"for_seconds"}), sorted(set(rule) - RULE_FIELDS)
        if missing:
            errors.append(f"{where}: missing {', '.join(missing)}")
        if extra:
            errors.append(f"{where}: unknown fields {', '.join(extra)}")
        name, query = rule.get("name"), rule.get("query")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            errors.append(f"{where}.name: a name of 1 to 100 characters")
        elif name in names:
            errors.append(f"{where}.name: '{name}' is used twice")
        names.add(name)
        if not isinstance(query, str) or not query.strip() or len(query) > 2000:
            errors.append(f"{where}.query: a PromQL expression returning one number")
        else:
            placeholders = {m.group("named") or m.group("braced") for m in Template.pattern.finditer(query)} - {None}
            if placeholders - PLACEHOLDERS:
                errors.append(f"{where}.query: unknown placeholder {', '.join(sorted(placeholders - PLACEHOLDERS))}; "
                              "use ${namespace}, ${service} or ${deployment}")
        if rule.get("op") not in (">", "<"):
            errors.append(f"{where}.op: '>' or '<' (the rule fails when the value is above or below the threshold)")
        threshold = rule.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            errors.append(f"{where}.threshold: a number")
        for_seconds = rule.get("for_seconds", 0)
        if isinstance(for_seconds, bool) or not isinstance(for_seconds, int) or not 0 <= for_seconds <= 86400:
            errors.append(f"{where}.for_seconds: a whole number of seconds from 0 to 86400")
        clean.append({"name": name, "query": query, "op": rule.get("op"), "threshold": threshold, "for_seconds": for_seconds})
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
    if not account_policies.can_edit_environment(user, environment):
        deny("environment.verification_update", user=user, request=request, target=environment,
             reason="only an admin can change an environment's verification")
    clean = clean_verification(environment, data)
    with transaction.atomic():
        settings = VerificationSettings.objects.select_for_update().filter(environment=environment).first()
        if settings is None:
            settings = VerificationSettings(environment=environment, **_defaults(environment))
        before = verification_out(settings)
        for key, value in clean.items():
            setattr(settings, key, value)
        settings.save()
        changes = diff(before, verification_out(settings))
        if changes:
            record("environment.verification_update", actor=user, request=request, target=environment, changes=changes)
    return settings


__all__ = ["default_rules", "settings_for", "settings_for_many", "update_verification", "verification_out"]
