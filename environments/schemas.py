"""What each environment operation takes: one declared schema per operation, shared by the page (through
the service) and the API (as its body). Rules that need the database (a cluster, group or environment
that must exist, names already taken) stay in the service, environments.lifecycle."""
from typing import Annotated, Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from pydantic import BeforeValidator, ValidationInfo, model_validator

from portal import outbound
from portal.schema_types import (
    Description, InputSchema, OptionalFlag, ShortTexts, StrictInt, Team, TrueOrFalse, Windows, checked, checking_rules,
    one_of, refuse, rule, text_list, whole_number,
)
from portal.validation import DNS_LABEL, check_dns_label, check_text, slugify_name

from . import guardrails
from . import policies as rules
from .choices import TIERS

Name = Annotated[str | None, checked(check_text, max_length=100)]


def check_dns_or_blank(value, field):
    """A DNS label, or nothing (then derived from another field)."""
    if value in (None, ""):
        return None
    errors = []
    clean = check_dns_label(value, field, errors)
    if errors:
        refuse(*errors)
    return clean


Label = Annotated[str | None, rule(check_dns_or_blank)]


_tier = one_of(TIERS, "{field}: '{value}' is not one of {choices}")


def _webhook_url(value, field):
    url = value or ""
    if not url:
        return url
    try:
        URLValidator(schemes=["http", "https"])(url)
        if len(url) > 500:
            raise ValidationError("too long")
    except (ValidationError, TypeError):
        refuse("webhook_url: not a valid http(s) URL of at most 500 characters")
    try:
        outbound.check_url(url, resolve_names=False)
    except outbound.UnsafeDestination as exc:
        refuse(f"webhook_url: {exc}")
    return url


def _notify_emails(value, field):
    addresses = [a.strip() for a in str(value or "").split(",") if a.strip()]
    bad = []
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(f"notify_emails: '{address}' is not an e-mail address")
    if bad:
        refuse(*bad)
    return ", ".join(addresses)


def _windows(value, field):
    windows, errors = rules.clean_windows(value)
    if errors:
        refuse(*errors)
    return windows


def _freeze(value, field):
    """{until, reason}: until None lifts the freeze."""
    freeze, errors = rules.clean_freeze(value)
    if errors:
        refuse(*errors)
    return {"until": freeze[0], "reason": freeze[1]}


class EnvironmentCreate(InputSchema):
    """Create an environment: placed on a cluster (slug, namespace and tier fixed from now on), or
    requested from a self-service template (`template`, whose guardrails then decide the rest)."""

    name: Name
    tier: Annotated[str | None, _tier] = None
    slug: Label = None
    cluster: str | None = None
    namespace: Label = None
    template: str | None = None
    ttl_hours: Annotated[StrictInt | None, whole_number(1, 24 * 90, unit="hours", optional=True)] = None
    team: Team = None
    description: Description = None
    parameters: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _placement(self, info: ValidationInfo):
        """Without a template: the slug comes from the name, the namespace from the slug (whether they
        are free, or reserved, is guardrails.name_problems's to say)."""
        if self.template or not checking_rules(info):
            return self
        if self.tier is None:
            refuse(f"tier: 'None' is not one of {', '.join(TIERS)}")
        errors = []
        if self.slug is None:
            self.slug = check_dns_label(slugify_name(self.name or ""), "slug", errors)
        if self.namespace is None and self.slug:
            self.namespace = self.slug
        if errors:
            refuse(*errors)
        return self


class EnvironmentChange(InputSchema):
    """Change an environment's name, team, description, protection rules and notifications."""

    name: Name = None
    team: Team = None
    description: Description = None
    required_approvals: Annotated[StrictInt | None, whole_number(0, 10)] = None
    prevent_self_approval: TrueOrFalse = None
    deployment_windows: Annotated[Windows | None, rule(_windows)] = None
    freeze: Annotated[dict[str, Any] | None, rule(_freeze)] = None
    approver_groups: Annotated[ShortTexts | None, text_list(20)] = None
    checklist: Annotated[ShortTexts | None, text_list(30)] = None
    promotion_from: str | None = None
    rollback_requires_approval: TrueOrFalse = None
    replicas: Annotated[StrictInt | None, whole_number(1, 100)] = None
    blue_green_keep_minutes: Annotated[StrictInt | None, whole_number(0, 24 * 60)] = None
    webhook_url: Annotated[str | None, rule(_webhook_url)] = None
    notify_emails: Annotated[str | None, rule(_notify_emails)] = None

    @model_validator(mode="before")
    @classmethod
    def _fixed_fields(cls, data, info: ValidationInfo):
        rules_apply = checking_rules(info) and isinstance(data, dict)
        unknown = set(data) - set(cls.model_fields) if rules_apply else set()
        if unknown:
            refuse(f"cannot change {', '.join(sorted(unknown))} here "
                   "(slug, tier, cluster and namespace are fixed at creation)")
        return data


def server_problem(value):
    """Why `value` is not the URL of a Kubernetes API server, or None."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return f"server: '{value}' is not an http(s) URL of a Kubernetes API server (e.g. https://10.0.0.1:6443)"
    return None


def _api_server(value, field):
    if value not in (None, "") and server_problem(value):
        refuse(server_problem(value))
    return value


def _pem_certificate(value, field):
    if value not in (None, "") and (not isinstance(value, str) or "BEGIN CERTIFICATE" not in value):
        refuse("ca_data: must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
    return value


class ClusterChange(InputSchema):
    """Change a cluster: its name, or how Gantry reaches it (an API server and token, a pasted kubeconfig,
    a kubeconfig file on the Gantry host, or in-cluster). Which one follows from the fields given."""

    name: Annotated[str | None, checked(check_dns_label)] = None
    server: Annotated[str | None, rule(_api_server)] = None
    token: str | None = None
    ca_data: Annotated[str | None, rule(_pem_certificate)] = None
    insecure: OptionalFlag = None
    kubeconfig: str | None = None
    kubeconfig_path: str | None = None
    context: Annotated[str | None, checked(check_text, required=False)] = None
    in_cluster: OptionalFlag = None


class ClusterCreate(ClusterChange):
    """Register a cluster."""

    name: Annotated[str, checked(check_dns_label)]


# ---------------------------------------------------------------- environment templates (self-service)

def _template_name(value, field):
    if not isinstance(value, str) or not DNS_LABEL.match(value or "") or len(value) > 63:
        refuse(f"name: '{value}' is not valid; use lowercase letters, digits and '-' (e.g. 'preview')")
    return value


def _with_errors(check):
    """A guardrails check (value, errors) -> clean value, as a field rule."""
    return checked(lambda value, field, errors: check(value, errors))


def _ingress_namespace(value, field):
    value = value or ""
    if value and not DNS_LABEL.match(value):
        refuse(f"ingress_namespace: '{value}' is not a namespace name")
    return value


def _blank_is_none(value):
    return None if value == "" else value


# Hours from 1 to the longest time to live, or none (null, or a blank form field). Pydantic runs the
# before-validators last to first: the rule, then a blank (as the API's body may give it) as none.
Hours = Annotated[int | None, BeforeValidator(_blank_is_none), whole_number(
    1, guardrails.MAX_TTL_HOURS, optional=True,
    message="{field}: a whole number of hours from {low} to {high}, or empty for none")]


class TemplateChange(InputSchema):
    """Change an environment template: its guardrails (quota, limit range, network policy, time to live,
    parameters) and what environments made from it get (approvals, services)."""

    description: Annotated[str | None, rule(lambda value, field: str(value or "")[:2000])] = None
    tier: Annotated[str | None, _tier] = None
    cluster: str | None = None
    quota: Annotated[dict[str, Any] | None, _with_errors(lambda v, e: guardrails.clean_quantity_map(v, "quota", e))] = None
    limit_range: Annotated[dict[str, Any] | None, _with_errors(guardrails.clean_limit_range)] = None
    network_policy: Annotated[str | None, one_of(guardrails.NETWORK_POLICIES,
                                                 "{field}: use one of {choices}")] = None
    ingress_namespace: Annotated[str | None, rule(_ingress_namespace)] = None
    ttl_hours: Hours = None
    max_ttl_hours: Hours = None
    requires_approval: TrueOrFalse = None
    required_approvals: Annotated[int | None, whole_number(1, 10, message="{field}: a whole number from 1 to 10")] = None
    parameters: Annotated[dict[str, Any] | None, _with_errors(guardrails.clean_parameter_ranges)] = None
    services: Annotated[list[dict[str, Any]] | None, _with_errors(guardrails.template_services)] = None


class TemplateCreate(TemplateChange):
    """Define an environment template: its name and tier (fixed from then on) and its guardrails."""

    name: Annotated[str, rule(_template_name)]
    tier: Annotated[str, _tier]


# ---------------------------------------------------------------- extending an environment's time to live

class Extension(InputSchema):
    """Push an environment's expiry later (its template's maximum is the service's to check)."""

    hours: Annotated[int, whole_number(1, guardrails.MAX_TTL_HOURS, unit="hours")]
