"""What an environment's verification settings take (the ``verification`` of PATCH /environments/{slug}):
one declared schema whose fields carry their rules; asking Prometheus about the rules' queries is the
service's (deployments.monitoring.config)."""
from __future__ import annotations

from string import Template
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import ValidationInfo, model_validator

from portal.schema_types import InputSchema, checked, checking_rules, one_of, refuse, true_or_false
from portal.schema_types import rule as field_rule

FIELDS = ("window_seconds", "probe_interval_seconds", "failure_threshold", "auto_rollback", "prometheus_url", "rules",
          "unknown_rule", "require_verified_promotion")
RULE_FIELDS = {"name", "query", "op", "threshold", "for_seconds"}
PLACEHOLDERS = {"namespace", "service", "deployment"}


def _whole_number(low, high):
    def validate(value, field):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            refuse(f"verification.{field}: a whole number from {low} to {high}")
        return value
    return field_rule(validate)


_true_or_false = true_or_false("verification.{field}: true or false")
_unknown_rule = one_of(("fail", "ignore"), "verification.unknown_rule: 'fail' (a rule Prometheus cannot answer fails "
                                           "the verification) or 'ignore'")


def _prometheus_url(value, field):
    url = value or ""
    if url:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 300:
            refuse("verification.prometheus_url: an http(s) URL such as http://prometheus:9090, or null")
    return url


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


class Verification(InputSchema):
    """How deployments to an environment are verified: how long and how often its services are probed,
    the Prometheus rules they must pass, and whether a failure rolls back by itself."""

    window_seconds: Annotated[Any, _whole_number(10, 86400)] = None
    probe_interval_seconds: Annotated[Any, _whole_number(1, 3600)] = None
    failure_threshold: Annotated[Any, _whole_number(1, 100)] = None
    auto_rollback: Annotated[Any, _true_or_false] = None
    prometheus_url: Annotated[Any, field_rule(_prometheus_url)] = None
    rules: Annotated[Any, checked(lambda value, field, errors: _clean_rules(value, errors))] = None
    unknown_rule: Annotated[Any, _unknown_rule] = None
    require_verified_promotion: Annotated[Any, _true_or_false] = None

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data, info: ValidationInfo):
        """Unknown fields get this message (with the known ones), not pydantic's."""
        unknown = sorted(set(data) - set(FIELDS)) if checking_rules(info) and isinstance(data, dict) else []
        if unknown:
            refuse(f"verification: unknown fields {', '.join(unknown)}; use {', '.join(FIELDS)}")
        return data
