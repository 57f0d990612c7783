"""The job list and the job page, whose log follows a running job by htmx polling."""
import contextlib

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from portal.accounts import policies
from portal.live import Poll, state_of
from portal.pages import button_action, needs_role, paginate, refusals_as_pages

from . import services
from .queries import visible_job, visible_jobs
from .models import JobLogLine, JobState
from .services import JobTransitionError


def duration_text(delta):
    """3h 02m, 4m 05s, 12s: short and sortable by eye."""
    if delta is None:
        return ""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def job_duration_text(job):
    """A finished job's duration; a running one says so rather than show a figure that a live
    fragment answered 304 would leave standing still."""
    if job.is_finished:
        return duration_text(job.duration)
    return "still running" if job.started_at else ""


def hide_system_jobs(queryset, show_system=False):
    """Job lists hide housekeeping jobs (notifications) unless asked; see `job_kind(system=True)`."""
    return queryset if show_system else queryset.exclude(kind__in=services.system_kinds())


def jobs_parts(queryset):
    """Version parts of a list of jobs (portal/live.py): one aggregate query."""
    return state_of(queryset, "created_at", "started_at", "finished_at", by=("state", JobState.values))


@login_required
@needs_role
def job_list(request):
    state = request.GET.get("state", "")
    show_system = request.GET.get("system") == "1"
    qs = hide_system_jobs(visible_jobs(request.user), show_system)
    if state in JobState.values:
        qs = qs.filter(state=state)
    else:
        state = ""
    poll = Poll(request)
    depths = services.queue_depths()
    parts = (jobs_parts(qs), depths)

    def render_table(tag):
        page = paginate(request, qs.order_by("-created_at"), count=parts[0][0])
        for job in page:
            job.duration_text = job_duration_text(job)
        return render(request, "jobs/_table.html" if poll.is_poll else "jobs/list.html", {
            "section": "jobs", "page": page, "states": JobState.values, "state": state,
            "show_system": show_system, "queues": depths, "jobs_version": tag,
        })

    if poll.wants("job-table"):
        return poll.respond(parts, render_table)
    return render_table(poll.version_for(parts, "job-table"))


LOG_FRAGMENT = "job-log-tail"


def log_parts(job):
    """Version parts of a job's log and summary (portal/live.py): the job's columns that change while
    it runs, and (count, last id) of its log lines in one aggregate query."""
    return (job.state, job.queue, job.attempts, job.worker, job.error, job.started_at, job.finished_at,
            state_of(JobLogLine.objects.filter(job_id=job.pk), "id"))


def log_context(request, job, after=0, tag=None):
    """The log lines after `after` and the summary of `job`, for the job page and pages that embed its
    log (the deployment page). The log's tail is a live fragment polling `?after=<last line>`; a
    finished job's tail has no version, so it stops polling. Without `tag` the version is computed
    (a page that embeds the log); a poll passes the one it answers with."""
    job.duration_text = job_duration_text(job)
    if tag is None and not job.is_finished:
        tag = Poll(request).version_for(log_parts(job), LOG_FRAGMENT)  # before the lines: none is missed
    lines = list(JobLogLine.objects.filter(job_id=job.pk, id__gt=after).order_by("id"))
    last = lines[-1].id if lines else after
    return {"job": job, "lines": lines, "last_line_id": last, "log_version": tag,
            "log_url": f"{reverse('job_detail', args=[job.pk])}?after={last}",
            "may_manage": policies.can_manage_job(request.user, job)}


@login_required
@needs_role
def job_detail(request, job_id):
    """The whole page; to a poll of the log's tail (`?after=<line id>`) a 304 while the job and its log
    are unchanged, else the lines after that one and the summary (out of band)."""
    job = visible_job(request.user, job_id)  # read the state before the lines: a finished job has all its lines
    poll = Poll(request)
    if poll.wants(LOG_FRAGMENT):
        after = 0
        with contextlib.suppress(ValueError):
            after = max(int(request.GET.get("after", "0")), 0)
        return poll.respond(log_parts(job), lambda tag: render(
            request, "jobs/log_fragment.html", log_context(request, job, after, tag)))
    response = render(request, "jobs/detail.html", dict(log_context(request, job), section="jobs"))
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@login_required
@needs_role
@require_POST
@refusals_as_pages
def job_retry(request, job_id):
    job = visible_job(request.user, job_id)
    return button_action(request, lambda: services.retry_job(job, user=request.user, request=request),
                         done="Job queued again.", back=reverse("job_detail", args=[job.pk]),
                         refusals=(JobTransitionError,), refused="Cannot retry: {}.")


@login_required
@needs_role
@require_POST
@refusals_as_pages
def job_cancel(request, job_id):
    job = visible_job(request.user, job_id)
    return button_action(request, lambda: services.cancel_job(job, user=request.user, request=request),
                         done="Job cancelled.", back=reverse("job_detail", args=[job.pk]),
                         refusals=(JobTransitionError,), refused="Cannot cancel: {}.")

