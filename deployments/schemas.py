"""What each deployments operation takes: one declared schema per operation, shared by the page (through
the service) and the API (as its body). Rules that need the database stay in the service."""
from typing import Annotated


from pydantic import ConfigDict, Field

from portal.schema_types import (
    Approval, Comment, Description, InputSchema, ObjectId, OptionalFlag, Rejection, RejectionComment, ShortTexts,
    Team, checked, comment_rule, refuse, rule,
)
from portal import validation
from portal.validation import check_dns_label, check_text

from .choices import STRATEGY_CHOICES
from .manifests import ManifestError, format_problem, validate_manifest

STRATEGIES = [value for value, _ in STRATEGY_CHOICES]


def _strategy(value, field):
    strategy = value or "rolling"
    if strategy not in STRATEGIES:
        refuse(f"strategy: '{strategy}' is not one of {', '.join(STRATEGIES)}")
    return strategy


def _health_path(value, field):
    path = value or "/health"
    if not isinstance(path, str) or not path.startswith("/") or len(path) > 200 or " " in path:
        refuse(f"health_path: '{path}' must be a URL path starting with '/' (e.g. /health)")
    return path


def _manifest(value, field):
    try:
        validate_manifest(value)
    except ManifestError as exc:
        refuse(*(f"manifest: {format_problem(p)}" for p in exc.problems))
    return value


Strategy = Annotated[str | None, rule(_strategy)]
HealthPath = Annotated[str | None, rule(_health_path)]
Manifest = Annotated[str, rule(_manifest)]


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


def _release_field(check):
    """A portal.validation release check, (value, errors, field) -> clean value, as a field rule."""
    return checked(lambda value, field, errors: check(value, errors, field))


class ReleaseCreate(InputSchema):
    """Register a release: a version of a catalog service, bound to one image."""

    service: Annotated[str, checked(check_dns_label)]
    version: Annotated[str, _release_field(validation.check_version)]
    image: Annotated[str, _release_field(validation.check_image_reference)]
    git_sha: Annotated[str | None, _release_field(validation.check_git_sha)] = None
    notes: Annotated[str | None, checked(check_text, required=False, max_length=10000)] = None


class DeploymentApproval(Approval):
    """Approve a deployment: the checklist items ticked, and the manifests' hash the approver reviewed."""

    checklist: ShortTexts | None = None
    manifest_hash: str | None = None  # the manifests the approver reviewed; 409 if they changed since


class DeploymentRejection(DeploymentApproval):
    comment: RejectionComment = ""


class Reason(InputSchema):
    """Cancel a deployment or roll one back: why (optional)."""

    reason: Comment = ""


def _break_glass_reason(value, field):
    if not isinstance(value, str) or not value.strip():
        refuse("break_glass.reason: required (say why the rules must be overridden)")
    if len(value) > 500:
        refuse("break_glass.reason: at most 500 characters")
    return value.strip()


class BreakGlass(InputSchema):
    """Override the environment's rules for one deployment (admins only): why. Checked after the
    admin check, so that anyone else gets the audited refusal whatever the reason says."""

    model_config = ConfigDict(extra="ignore")

    reason: Annotated[str | None, rule(_break_glass_reason)] = Field(default=None, validate_default=True)


class DeploymentRequest(InputSchema):
    """Ask to run a release in an environment: now if its window is open (`start_now`), or when it opens;
    `break_glass` overrides the rules. Which release and environment exist is the service's to say."""

    release: ObjectId
    environment: str
    start_now: OptionalFlag = False
    break_glass: BreakGlass | None = None


class RestoreRejection(Rejection):
    """Reject a production restore: the comment says why."""

    comment: Annotated[str | None, comment_rule(required=True, missing="comment: say why the restore is rejected")] = ""
