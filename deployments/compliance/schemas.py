"""Response schemas of the compliance API (the OpenAPI document): each mirrors the dict that
`reports`, `evidence` and `period` build, key for key (portal.schema_types.Out forbids others)."""
from typing import Any

from portal.schema_types import OptionalTimestamp, Out, Timestamp

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
