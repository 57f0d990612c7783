
from ninja import Router

from portal.schema_types import OptionalTimestamp, Out, Timestamp

from .queries import visible_job, visible_jobs

router = Router(tags=["jobs"])


class LogLineOut(Out):
    at: Timestamp
    level: str
    message: str


class JobSummaryOut(Out):
    """A job in the list (without its log)."""

    id: str
    kind: str
    title: str  # what the job does, in words: its kind's registered title (Job.title)
    queue: str
    state: str
    target: str | None
    environment: str | None
    requested_by: str | None
    attempts: int
    error: str | None
    created_at: Timestamp
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp


class JobOut(JobSummaryOut):
    log: list[LogLineOut]


def job_out(job, with_log=True):
    data = {
        "id": str(job.pk), "kind": job.kind, "title": job.title, "queue": job.queue, "state": job.state,
        "target": f"{job.target_type}:{job.target_repr}" if job.target_type else None,
        "environment": job.environment.slug if job.environment_id else None,
        "requested_by": job.requested_by.get_username() if job.requested_by_id else None,
        "attempts": job.attempts, "error": job.error or None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if with_log:
        data["log"] = [{"at": line.at.isoformat(), "level": line.level, "message": line.message}
                       for line in job.log_lines.all()]
    return data


@router.get("/jobs", response=list[JobSummaryOut])
def list_jobs(request, state: str | None = None, kind: str | None = None):
    qs = visible_jobs(request.user)
    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    return [job_out(j, with_log=False) for j in qs[:200]]


@router.get("/jobs/{job_id}", response=JobOut)
def get_job(request, job_id: str):
    return job_out(visible_job(request.user, job_id))
