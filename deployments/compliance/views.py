"""Compliance pages: the printable evidence pack and its download, the reports with their CSV."""
import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render

from portal.errors import InvalidInput
from portal.jobs.models import Job, JobLogLine
from portal.live import Poll, state_of
from portal.pages import needs_role

from . import reports
from .packs import evidence_for, pack_zip
from .period import KIND, period_job, progress, start_period_evidence, zip_path


@login_required
@needs_role
def evidence_page(request, deployment_id):
    deployment, pack = evidence_for(request.user, deployment_id)
    response = render(request, "compliance/evidence.html", {
        "section": "deployments", "deployment": deployment, "pack": pack,
        "statements": pack["statements"], "events": pack["events"],
    })
    response["X-Evidence-SHA256"] = pack["sha256"]
    return response


@login_required
@needs_role
def evidence_zip(request, deployment_id):
    deployment, pack = evidence_for(request.user, deployment_id)
    response = HttpResponse(pack_zip(pack), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="gantry-evidence-deployment-{deployment.pk}.zip"'
    response["X-Evidence-SHA256"] = pack["sha256"]
    return response


class _Echo:
    def write(self, value):
        return value


def _csv(rows, filename):
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow([_cell(v) for v in row]) for row in rows),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _cell(value):
    """Keep a spreadsheet from reading a user-chosen value as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _report_page(request, build, csv_rows, template, filename, names):
    reports.require_auditor(request.user)
    filters = {name: request.GET.get(name, "") for name in names}
    try:
        report = build(filters)
    except InvalidInput as exc:
        return render(request, template, {"section": "compliance", "filters": filters, "error": "; ".join(exc.messages),
                                          "report": None}, status=400)
    if request.GET.get("format") == "csv":
        return _csv(csv_rows(report), filename)
    query = request.GET.copy()
    query["format"] = "csv"
    return render(request, template, {"section": "compliance", "filters": filters, "report": report,
                                      "csv_query": query.urlencode(), "sections": reports.SOD_SECTIONS})


@login_required
@needs_role
def sod_report(request):
    return _report_page(request, reports.separation_of_duties, reports.sod_csv_rows, "compliance/sod.html",
                        "gantry-separation-of-duties.csv", ("since", "until", "environment"))


@login_required
@needs_role
def access_report(request):
    return _report_page(request, reports.access_review, reports.access_csv_rows, "compliance/access.html",
                        "gantry-access-review.csv", ("at", "since", "until"))


BUILDS_FRAGMENT = "period-builds"


@login_required
@needs_role
def period_evidence(request):
    """Start a period's evidence job; list the recent ones with their progress and downloads."""

    reports.require_auditor(request.user)
    values, error, status = {"since": "", "until": ""}, "", 200
    if request.method == "POST":
        values = {"since": request.POST.get("since", ""), "until": request.POST.get("until", "")}
        try:
            job = start_period_evidence(request.user, values, request=request)
        except InvalidInput as exc:
            error, status = "; ".join(exc.messages), 400
        else:
            messages.success(request, "The evidence ZIP is being built; this page shows its progress.")
            return redirect(f"{request.path}#job-{job.pk}")
    # The builds are a live fragment (portal/live.py): the jobs' states and times, and the progress
    # lines of the unfinished ones, in two aggregate queries; a poll of an unchanged list is a 304.
    parts = (state_of(Job.objects.filter(kind=KIND), "created_at", "started_at", "finished_at"),
             state_of(JobLogLine.objects.filter(job__kind=KIND, job__finished_at__isnull=True), "id"))
    poll = Poll(request)

    def render_builds(tag):
        jobs = list(Job.objects.filter(kind=KIND).select_related("requested_by").order_by("-created_at")[:20])
        for job in jobs:
            job.progress = progress(job) if not job.is_finished or job.state == "succeeded" else None
        context = {"section": "compliance", "values": values, "error": error, "jobs": jobs, "builds_version": tag}
        if poll.wants(BUILDS_FRAGMENT):
            return render(request, "compliance/_period_builds.html", context)
        return render(request, "compliance/period.html", context, status=status)

    if poll.wants(BUILDS_FRAGMENT):
        return poll.respond(parts, render_builds)
    return render_builds(poll.version_for(parts, BUILDS_FRAGMENT))


@login_required
@needs_role
def period_evidence_zip(request, job_id):
    job = period_job(request.user, job_id)  # a refusal is the 403 or 404 page (needs_role)
    path = zip_path(job.pk)
    if job.state != "succeeded" or not path.exists():
        raise Http404("this evidence ZIP is not ready (or was removed); build it again")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"gantry-evidence-{job.params['since'][:10]}"
                        f"-{job.params['until'][:10]}.zip", content_type="application/zip")
