"""The job list and the job page, whose log follows a running job by htmx polling."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from portal.accounts import policies
from portal.live import Poll, state_of
from portal.views import needs_role, paginate, refusals_as_pages

from . import services
from .api import visible_jobs
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
        page = paginate(request, qs.order_by("-created_at"))
        titles = services.kind_titles()
        for job in page:
            job.duration_text = duration_text(job.duration)
            job.title = titles.get(job.kind, job.kind)
        return render(request, "jobs/_table.html" if poll.is_poll else "jobs/list.html", {
            "section": "jobs", "page": page, "states": JobState.values, "state": state,
            "show_system": show_system, "queues": depths, "jobs_version": tag,
        })

    if poll.wants("job-table"):
        return poll.respond(parts, render_table)
    return render_table(poll.version_for(parts, "job-table"))


def _visible_job(request, job_id):
    job = visible_jobs(request.user).filter(pk=job_id).first()
    if job is None:
        raise Http404(f"no job '{job_id}'")
    return job


@login_required
@needs_role
def job_detail(request, job_id):
    """The whole page; to an htmx poll (`?after=<line id>`) only the lines after that one."""
    job = _visible_job(request, job_id)  # read the state before the lines: a finished job has all its lines
    job.duration_text = duration_text(job.duration)
    partial = request.htmx and not request.htmx.history_restore_request
    after = 0
    if partial:
        try:
            after = max(int(request.GET.get("after", "0")), 0)
        except ValueError:
            pass
    lines = list(JobLogLine.objects.filter(job_id=job.pk, id__gt=after).order_by("id"))
    context = {
        "section": "jobs",
        "job": job,
        "lines": lines,
        "last_line_id": lines[-1].id if lines else after,
        "may_manage": policies.can_manage_job(request.user, job),
    }
    response = render(request, "jobs/log_fragment.html" if partial else "jobs/detail.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@needs_role
@require_POST
@refusals_as_pages
def job_retry(request, job_id):
    job = _visible_job(request, job_id)
    try:
        services.retry_job(job, user=request.user, request=request)
        messages.success(request, "Job queued again.")
    except JobTransitionError as exc:
        messages.error(request, f"Cannot retry: {exc}.")
    return redirect("job_detail", job_id=job.pk)


@login_required
@needs_role
@require_POST
@refusals_as_pages
def job_cancel(request, job_id):
    job = _visible_job(request, job_id)
    try:
        services.cancel_job(job, user=request.user, request=request)
        messages.success(request, "Job cancelled.")
    except JobTransitionError as exc:
        messages.error(request, f"Cannot cancel: {exc}.")
    return redirect("job_detail", job_id=job.pk)

