"""Plain-dict views of releases and deployments for the API, and their response schemas."""
from portal.jobs.api import LogLineOut
from portal.schema_types import OptionalTimestamp, Out, Timestamp, iso

from . import policies
from .monitoring.queries import AutoRollbackOut, VerificationOut, deployment_fields


class ReleaseOut(Out):
    id: int
    service: str
    version: str
    image: str
    git_sha: str | None
    notes: str
    created_by: str | None
    created_at: Timestamp


def release_out(release):
    return {
        "id": release.pk, "service": release.service.name, "version": release.version, "image": release.image,
        "git_sha": release.git_sha or None, "notes": release.notes,
        "created_by": release.created_by.get_username() if release.created_by_id else None,
        "created_at": iso(release.created_at),
    }


class DeploymentApprovalOut(Out):
    user: str
    decision: str
    comment: str
    at: Timestamp
    counts: bool


class DeploymentJobSummaryOut(Out):
    id: str
    state: str
    error: str | None


class DeploymentSummaryOut(Out):
    """`deployment_out(d, with_log=False)`: a deployment in a list."""

    id: int
    kind: str
    state: str
    release: ReleaseOut
    environment: str
    service: str
    requested_by: str | None
    requested_at: Timestamp
    start_now: bool
    break_glass: bool
    break_glass_reason: str | None
    reason: str | None
    image: str
    manifest_hash: str
    approvals_required: int
    approvals_valid: int
    approvals: list[DeploymentApprovalOut]
    rollback_of: int | None
    color: str | None
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp
    error: str | None
    job: DeploymentJobSummaryOut | None


class DeploymentJobOut(DeploymentJobSummaryOut):
    log: list[LogLineOut]


class DeploymentOut(DeploymentSummaryOut):
    """`deployment_out(d)`: one deployment, with its job's log, verification and rollback."""

    job: DeploymentJobOut | None
    verification: VerificationOut | None
    rolled_back_by: int | None
    auto: bool
    auto_rollback: AutoRollbackOut | None


def deployment_out(deployment, *, with_log=True):
    approvals = list(deployment.approvals.all())
    valid = {a.pk for a in policies.valid_approvals(deployment, approvals=approvals)}
    job = deployment.job
    data = {
        "id": deployment.pk,
        "kind": deployment.kind,
        "state": deployment.state,
        "release": release_out(deployment.release),
        "environment": deployment.environment.slug,
        "service": deployment.service.name,
        "requested_by": deployment.requested_by.get_username() if deployment.requested_by_id else None,
        "requested_at": iso(deployment.requested_at),
        "start_now": deployment.start_now,
        "break_glass": deployment.break_glass,
        "break_glass_reason": deployment.break_glass_reason or None,
        "reason": deployment.reason or None,
        "image": deployment.image,
        "manifest_hash": deployment.manifest_hash,
        "approvals_required": policies.approvals_required(deployment),
        "approvals_valid": len(valid),
        "approvals": [{"user": a.user.get_username(), "decision": a.decision, "comment": a.comment, "at": iso(a.at),
                       "counts": a.pk in valid} for a in approvals],
        "rollback_of": deployment.rollback_of_id,
        "color": deployment.color or None,
        "started_at": iso(deployment.started_at),
        "finished_at": iso(deployment.finished_at),
        "error": deployment.error or None,
        "job": None,
    }
    if with_log:  # the single-deployment answer: verification and rollback (deployments.monitoring)

        data.update(deployment_fields(deployment))
    if job is not None:
        data["job"] = {"id": str(job.pk), "state": job.state, "error": job.error or None}
        if with_log:
            data["job"]["log"] = [{"at": iso(line.at), "level": line.level, "message": line.message}
                                  for line in job.log_lines.all()]
    return data
