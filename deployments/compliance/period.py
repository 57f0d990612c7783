"""Evidence for a period: every production deployment between two dates, one ZIP of packs with a
CSV index, built by a background job (its log shows the progress)."""
import csv
import hashlib
import io
import os
import zipfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from deployments.models import Deployment
from portal.errors import NotFound
from portal.jobs.models import Job
from portal.jobs.services import enqueue_job

from .evidence import build_pack
from .packs import add_pack, require_auditor
from .reports import parse_moment
from .schemas import PeriodRequest

KIND = "compliance.period_evidence"
INDEX_COLUMNS = ["deployment", "kind", "service", "version", "environment", "state", "requested_by", "requested_at",
                 "break_glass", "verified", "integrity", "pack_sha256", "folder"]


def evidence_dir():
    path = Path(getattr(settings, "GANTRY_EVIDENCE_DIR", "") or Path(settings.BASE_DIR) / ".evidence")
    path.mkdir(parents=True, exist_ok=True)
    return path


def zip_path(job_id):
    return evidence_dir() / f"period-{job_id}.zip"


def start_period_evidence(user, data, request=None):
    """An auditor asks for the packs of a period; returns the queued job."""
    require_auditor(user)
    period = PeriodRequest.validated(data)
    since, until = period["since"], period["until"]

    with transaction.atomic():
        return enqueue_job(KIND, requested_by=user, request=request,
                           params={"since": since.isoformat(), "until": until.isoformat()})


def deployments_between(since, until):
    return (Deployment.objects.select_related("release__service", "service", "environment", "requested_by")
            .filter(environment__tier="production", requested_at__gte=since, requested_at__lt=until)
            .order_by("requested_at", "id"))


def build_period_zip(job, log):
    """Write the ZIP for `job` (params since/until); return a summary for the job's result."""
    since = parse_moment("since", job.params["since"])
    until = parse_moment("until", job.params["until"])
    deployments = list(deployments_between(since, until))
    total = len(deployments)
    log(f"{total} production deployment(s) requested from {since.isoformat()} until {until.isoformat()}")
    final = zip_path(job.pk)
    partial = final.with_suffix(".part")
    index = io.StringIO()
    writer = csv.writer(index)
    writer.writerow(INDEX_COLUMNS)
    unverified = 0
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, deployment in enumerate(deployments, start=1):
            pack = build_pack(deployment)
            folder = f"deployment-{deployment.pk}/"
            add_pack(archive, pack, prefix=folder)
            unverified += not pack["verified"]
            writer.writerow([deployment.pk, deployment.kind, deployment.service.name, deployment.release.version,
                             deployment.environment.slug, deployment.state,
                             deployment.requested_by.get_username() if deployment.requested_by_id else "",
                             deployment.requested_at.isoformat(), deployment.break_glass, pack["verified"],
                             pack["integrity"], pack["sha256"], folder])
            if number == total or number % 10 == 0:
                log(f"progress: {number}/{total} pack(s) built")
        archive.writestr("index.csv", index.getvalue())
    os.replace(partial, final)
    digest = hashlib.sha256(final.read_bytes()).hexdigest()
    log(f"ZIP ready: {total} pack(s), {final.stat().st_size} bytes, sha256 {digest}"
        + (f"; {unverified} pack(s) FAIL verification (see index.csv)" if unverified else ""))
    return {"packs": total, "unverified": unverified, "bytes": final.stat().st_size, "sha256": digest}


def period_job(user, job_id):
    require_auditor(user)
    job = Job.objects.filter(pk=job_id, kind=KIND).first()
    if job is None:
        raise NotFound(f"no period evidence job {job_id}")
    return job


def progress(job):
    """(built, total) from the job's last progress line, or None."""
    line = job.log_lines.filter(message__startswith="progress: ").order_by("-id").values_list("message", flat=True).first()
    if not line:
        return None
    built, total = line.split(" ")[1].split("/")
    return int(built), int(total)
