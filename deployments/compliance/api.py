"""Evidence and reports in the v1 API (API.md: evidence, reports)."""
import uuid

from django.http import FileResponse, HttpResponse
from ninja import Router, Status

from portal.errors import Conflict, NotFound

from .evidence import pack_text
from .packs import evidence_for
from .period import period_job, start_period_evidence, zip_path
from .reports import access_review, require_auditor, separation_of_duties
from .schemas import AccessReviewOut, EvidencePackOut, PeriodJobOut, PeriodRequest, SeparationOfDutiesOut

router = Router(tags=["compliance"])


@router.get("/deployments/{deployment_id}/evidence", response={200: EvidencePackOut})
def deployment_evidence(request, deployment_id: int):
    """The evidence pack of one deployment; its SHA-256 is also in the X-Evidence-SHA256 header."""
    _, pack = evidence_for(request.user, deployment_id)
    EvidencePackOut.model_validate(pack)  # the text goes out as built (its hash); it must still match its schema
    response = HttpResponse(pack_text(pack), content_type="application/json; charset=utf-8")
    response["X-Evidence-SHA256"] = pack["sha256"]
    return response


@router.get("/reports/separation-of-duties", response={200: SeparationOfDutiesOut})
def separation_of_duties_report(request, since: str = "", until: str = "", environment: str = ""):
    """Production deployments without independent approval, self-approvals, break-glass overrides and
    starts outside windows or during freezes, each with links to the deployment and its evidence."""

    require_auditor(request.user)
    return separation_of_duties({"since": since, "until": until, "environment": environment})


@router.get("/reports/access", response={200: AccessReviewOut})
def access_report(request, at: str = "", since: str = "", until: str = ""):
    """Who held which role where at `at` (default now) and who granted it, rebuilt from the audit log;
    with `since`/`until`, also each grant and revoke in that period."""

    require_auditor(request.user)
    return access_review({"at": at, "since": since, "until": until})


@router.post("/reports/evidence-period", response={202: PeriodJobOut})
def start_evidence_period(request, payload: PeriodRequest):
    """Start building one ZIP with the evidence packs of every production deployment requested between
    `since` and `until` (dates or ISO times; `until` as a date includes that day). Follow the job at
    /api/v1/jobs/{id}; download with GET /api/v1/reports/evidence-period/{id}.zip once it succeeded."""

    job = start_period_evidence(request.user, payload, request=request)
    return Status(202, {"id": str(job.pk), "state": job.state, "job": f"/api/v1/jobs/{job.pk}",
                 "download": f"/api/v1/reports/evidence-period/{job.pk}.zip"})


@router.get("/reports/evidence-period/{job_id}.zip", response={200: None})
def download_evidence_period(request, job_id: str):
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise NotFound(f"no period evidence job {job_id}") from None
    job = period_job(request.user, job_id)
    path = zip_path(job.pk)
    if job.state != "succeeded" or not path.exists():
        raise Conflict(f"the ZIP is not ready: the job is {job.state}")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"gantry-evidence-{job.pk}.zip",
                        content_type="application/zip")
