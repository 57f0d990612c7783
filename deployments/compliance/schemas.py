"""The compliance API's schemas: what a report's period takes (declared, as every operation's input),
and the responses, each mirroring the dict that `reports`, `evidence` and `period` build, key for key
(portal.schema_types.Out forbids others)."""
from datetime import datetime
from typing import Annotated, Any

from pydantic import ValidationInfo, WithJsonSchema, model_validator

from portal.errors import InvalidInput
from portal.schema_types import InputSchema, OptionalTimestamp, Out, Timestamp, checking_rules, refuse, rule
from portal.validation import parse_moment

# ---------------------------------------------------------------- a period (input)


def _moment(end_of_day):
    """A date (its start; with `end_of_day` the next day's start, so that the day is in) or an ISO 8601
    time with its zone; blank: none."""
    def validate(value, field):
        if value is not None and not isinstance(value, str):
            refuse(f"{field}: '{value}' is not a date (2026-11-21) or an ISO 8601 time (2026-11-21T03:00:00+09:00)")
        try:
            return parse_moment(field, value or "", error=InvalidInput, end_of_day=end_of_day)
        except InvalidInput as exc:
            refuse(*exc.messages)
    return rule(validate)


MomentText = WithJsonSchema({"type": "string", "description": "a date (2026-10-01) or an ISO 8601 time with a zone"})


class Period(InputSchema):
    """A report's period: from `since` up to `until` (a date includes that day), either open."""

    since: Annotated[str | datetime | None, _moment(end_of_day=False), MomentText] = None
    until: Annotated[str | datetime | None, _moment(end_of_day=True), MomentText] = None

    @model_validator(mode="after")
    def _in_order(self, info: ValidationInfo):
        if checking_rules(info) and self.since and self.until and self.since >= self.until:
            refuse("until: must be after since")
        return self


class PeriodRequest(Period):
    """The period of an evidence ZIP: both ends required."""

    since: Annotated[str | datetime | None, _moment(end_of_day=False), MomentText]
    until: Annotated[str | datetime | None, _moment(end_of_day=True), MomentText]

    @model_validator(mode="after")
    def _both(self, info: ValidationInfo):
        if checking_rules(info) and (self.since is None or self.until is None):
            refuse("since and until: both required (dates such as 2026-10-01 and 2026-12-31)")
        return self


# ---------------------------------------------------------------- separation of duties


class FindingOut(Out):
    """A deployment in a finding: the columns every section shares (reports.separation_of_duties.row)."""

    deployment: int
    service: str
    version: str
    environment: str
    state: str
    kind: str
    requested_by: str | None
    requested_at: Timestamp
    url: str
    evidence: str


class UnapprovedOut(FindingOut):
    author: str | None
    break_glass: bool


class SelfApprovalOut(FindingOut):
    approver: str
    approved_at: Timestamp


class BreakGlassOut(FindingOut):
    reason: str
    approvers: list[str]


class OutsideWindowOut(FindingOut):
    window_open: bool | None
    frozen: bool | None
    freeze_reason: str
    break_glass: bool
    event: int
    started_at: Timestamp


class SeparationOfDutiesOut(Out):
    scope: str
    since: OptionalTimestamp
    until: OptionalTimestamp
    without_independent_approval: list[UnapprovedOut]
    self_approvals: list[SelfApprovalOut]
    break_glass: list[BreakGlassOut]
    outside_windows_or_freezes: list[OutsideWindowOut]


# ---------------------------------------------------------------- access review


class RoleHeldOut(Out):
    user: str
    user_id: int | None
    role: str
    scope: str
    granted_by: str
    granted_at: Timestamp
    event: int
    event_hash: str


class RoleChangeOut(Out):
    at: Timestamp
    action: str
    user: str
    role: str
    scope: str
    by: str
    event: int


class AccessReviewOut(Out):
    at: Timestamp
    since: OptionalTimestamp
    until: OptionalTimestamp
    held: list[RoleHeldOut]
    changes: list[RoleChangeOut]


# ---------------------------------------------------------------- evidence


class PeriodJobOut(Out):
    """The job building a period's ZIP: follow `job`, then download `download`."""

    id: str
    state: str
    job: str
    download: str


class EvidenceDeploymentOut(Out):
    id: int
    kind: str
    service: str
    release: str
    environment: str
    tier: str
    state: str
    break_glass: bool


class EvidenceSubjectOut(Out):
    deployment: int
    rollbacks: list[int]
    release: int
    jobs: list[str]


class EventRefOut(Out):
    id: int
    seq: int
    hash: str


class StatementOut(Out):
    key: str
    text: str
    facts: dict[str, Any]
    events: list[EventRefOut]


class EvidencePackOut(Out):
    """`evidence.build_pack`: what happened, each statement backed by the audit events it carries
    (`events`, canonical with their hashes), the attachments, and the pack's own SHA-256."""

    integrity: str
    format: str
    generated_at: Timestamp
    deployment: EvidenceDeploymentOut
    subject: EvidenceSubjectOut
    verified: bool
    problems: list[str]
    statements: list[StatementOut]
    events: list[dict[str, Any]]
    attachments: dict[str, Any]
    sha256: str
