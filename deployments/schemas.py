"""What each deployments operation takes: one declared schema per operation, shared by the page (through
the service) and the API (as its body). Rules that need the database stay in the service."""
from typing import Annotated

from pydantic import BeforeValidator

from portal.schema_types import InputSchema, checked, refuse
from portal.validation import check_dns_label, check_text

from .choices import STRATEGY_CHOICES
from .manifests import ManifestError, format_problem, validate_manifest

STRATEGIES = [value for value, _ in STRATEGY_CHOICES]

Team = Annotated[str | None, checked(check_text, required=False, max_length=100)]
Description = Annotated[str | None, checked(check_text, required=False, max_length=2000)]


def _strategy(value):
    strategy = value or "rolling"
    if strategy not in STRATEGIES:
        refuse(f"strategy: '{strategy}' is not one of {', '.join(STRATEGIES)}")
    return strategy


def _health_path(value):
    path = value or "/health"
    if not isinstance(path, str) or not path.startswith("/") or len(path) > 200 or " " in path:
        refuse(f"health_path: '{path}' must be a URL path starting with '/' (e.g. /health)")
    return path


def _manifest(value):
    try:
        validate_manifest(value)
    except ManifestError as exc:
        refuse(*(f"manifest: {format_problem(p)}" for p in exc.problems))
    return value


Strategy = Annotated[str | None, BeforeValidator(_strategy)]
HealthPath = Annotated[str | None, BeforeValidator(_health_path)]
Manifest = Annotated[str, BeforeValidator(_manifest)]


class ServiceChange(InputSchema):
    """Change a catalog service (its name is fixed: releases refer to it)."""

    team: Team = None
    description: Description = None
    strategy: Strategy = None
    health_path: HealthPath = None
    manifest: Manifest = None


class ServiceCreate(ServiceChange):
    """Add a service to the catalog: a name, its manifest and how it rolls out."""

    name: Annotated[str, checked(check_dns_label)]
    manifest: Manifest
