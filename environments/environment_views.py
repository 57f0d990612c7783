"""Pages for environments: list, detail, create, edit, delete, re-provision. They parse the form, call environments.lifecycle, render."""
import zoneinfo
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, Value, When
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.accounts import policies
from portal.audit.models import AuditEvent
from portal.errors import Conflict, InvalidInput, audit_conflict
from portal.jobs.views import hide_system_jobs, jobs_parts
from portal.live import Poll, state_of
from portal.pages import button_action, form_action, form_page, needs_role, paginate, require

from . import lifecycle
from . import policies as rules
from .choices import TIER_ORDER, TIERS_IN_ORDER, WEEKDAYS, EnvironmentStatus
from .expiry import may_extend
from .guardrails import deletion_refusal
from .models import Cluster, Environment
from .queries import visible_environment
from .serializers import masked_url

GONE_OR_GOING = (EnvironmentStatus.DELETING, *EnvironmentStatus.GONE)

RECENT = 10


@login_required
@needs_role
def environment_list(request):
    tier = request.GET.get("tier", "")
    qs = policies.restrict_environments(request.user, Environment.objects.select_related("cluster", "owner"))
    qs = qs.exclude(status__in=EnvironmentStatus.GONE)
    if tier in TIERS_IN_ORDER:
        qs = qs.filter(tier=tier)
    else:
        tier = ""
    poll = Poll(request)

    def render_list(tag):
        return render(request, "environments/_table.html" if poll.is_poll else "environments/list.html", {
            "section": "environments",
            "page": paginate(request, qs.order_by(tier_order(), "name")),
            "tiers": TIERS_IN_ORDER,
            "tier": tier,
            "envs_version": tag,
        })

    if poll.wants("env-table"):
        return poll.respond(state_of(qs), render_list)
    return render_list(poll.version_for(state_of(qs), "env-table"))


def tier_order():
    """Development, preview, staging, production: the order environments are listed in."""
    return Case(*[When(tier=tier, then=Value(rank)) for tier, rank in TIER_ORDER.items()], default=Value(99))


@login_required
@needs_role
def environment_detail(request, slug):
    env = visible_environment(request.user, slug)
    poll = Poll(request)
    jobs = hide_system_jobs(env.jobs.all())
    activity = (env.status, env.updated_at.isoformat(), jobs_parts(jobs))
    context = {"env": env, "jobs": jobs.select_related("requested_by").order_by("-created_at")[:RECENT]}
    if poll.wants("env-activity"):  # its status (out of band) and its recent jobs
        return poll.respond(activity, lambda tag: render(request, "environments/_activity.html",
                                                         dict(context, activity_version=tag, status_oob=True)))
    can_view_audit = policies.can_view_audit(request.user)
    return render(request, "environments/detail.html", context | {
        "activity_version": poll.version_for(activity, "env-activity"),
        "section": "environments",
        "env": env,
        "window_open": rules.window_open(env.deployment_windows),
        "next_window": rules.next_window_opening(env.deployment_windows),
        "freeze": rules.active_freeze(env),
        "webhook": masked_url(env.webhook_url),
        "can_view_audit": can_view_audit,
        "events": AuditEvent.objects.filter(environment=env.slug).order_by("-seq")[:RECENT] if can_view_audit else [],
        "can_edit": policies.can_edit_environment(request.user, env),
        "can_delete": deletion_refusal(request.user, env) is None and env.status not in GONE_OR_GOING,
        "can_extend": env.expires_at is not None and may_extend(request.user, env) and env.status not in GONE_OR_GOING,
        "max_ttl_hours": (env.guardrails or {}).get("max_ttl_hours"),
    })


CREATE_FIELDS = ("name", "slug", "tier", "cluster", "namespace", "ttl_hours", "team", "description")


def _create_context(request, values):
    return {
        "section": "environments",
        "tiers": rules.creatable_tiers(request.user),
        "clusters": Cluster.objects.only("name", "is_sandbox"),
        "values": values,
    }


@login_required
@needs_role
def environment_create(request):
    if request.method != "POST":
        require(rules.create_refusal(request.user))
        return render(request, "environments/form_create.html", _create_context(request, {}))
    data = {field: request.POST.get(field, "").strip() for field in CREATE_FIELDS}
    return form_action(request, lambda: lifecycle.create_environment(request.user, data, request=request),
                       template="environments/form_create.html", context=_create_context(request, data),
                       done=lambda env: f"Environment {env.name} created" + (
                           f"; provisioning namespace {env.namespace} on {env.cluster}." if env.cluster_id else "."),
                       then=lambda env: reverse("environment_detail", args=[env.slug]))


# The edit form's fields, by how they are read from the form.
TEXT_FIELDS = ("name", "team", "description", "required_approvals", "replicas", "blue_green_keep_minutes",
               "notify_emails")


FLAG_FIELDS = ("prevent_self_approval", "rollback_requires_approval")


LIST_FIELDS = ("approver_groups", "checklist")  # comma-separated / one per line


def _blank_window():
    return {"days": [], "start": "", "end": "", "timezone": timezone.get_current_timezone_name()}


def _edit_context(request, env, values, windows):
    return {
        "section": "environments",
        "env": env,
        "sources": policies.restrict_environments(request.user, Environment.objects.exclude(pk=env.pk))
        .only("slug", "name").order_by("name"),
        "values": values,
        "windows": windows,
        "weekdays": WEEKDAYS,
        "freeze": rules.active_freeze(env),
        "webhook": masked_url(env.webhook_url),
        "timezones": sorted(zoneinfo.available_timezones()),
        "current_timezone": timezone.get_current_timezone_name(),
    }


def _windows_from_post(post):
    """The window rows of the edit form, as entered (blank and removed rows left out)."""
    windows = []
    try:
        count = min(int(post.get("window_count", "0")), 50)
    except ValueError:
        count = 0
    for i in range(count):
        row = {
            "days": post.getlist(f"window-{i}-days"),
            "start": post.get(f"window-{i}-start", "").strip(),
            "end": post.get(f"window-{i}-end", "").strip(),
            "timezone": post.get(f"window-{i}-timezone", "").strip(),
        }
        if post.get(f"window-{i}-remove") or not (row["days"] or row["start"] or row["end"]):
            continue
        windows.append(row)
    return windows


def _freeze_from_post(post, errors):
    """None (clear), a {until, reason} dict, or "unchanged"; the until is local time in the chosen zone."""
    if post.get("clear_freeze"):
        return None
    until_text = post.get("freeze_until", "").strip()
    reason = post.get("freeze_reason", "").strip()
    if not until_text and not reason:
        return "unchanged"
    if not until_text:
        errors.append("freeze.until: give the date and time the freeze ends")
        return "unchanged"
    zone_name = post.get("freeze_timezone", "").strip() or "UTC"
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.append(f"freeze.timezone: unknown time zone '{zone_name}'")
        return "unchanged"
    try:
        until = datetime.fromisoformat(until_text)
    except ValueError:
        errors.append(f"freeze.until: '{until_text}' is not a date and time")
        return "unchanged"
    return {"until": until.replace(tzinfo=zone).isoformat(), "reason": reason}


@login_required
@needs_role
def environment_edit(request, slug):
    env = visible_environment(request.user, slug)
    if request.method != "POST":
        require(rules.edit_refusal(request.user, env))
        values = {field: getattr(env, field) for field in TEXT_FIELDS + FLAG_FIELDS}
        values.update(approver_groups=", ".join(env.approver_groups), checklist="\n".join(env.checklist),
                      promotion_from=env.promotion_from.slug if env.promotion_from_id else "")
        windows = list(env.deployment_windows) + [_blank_window()]
        return render(request, "environments/form_edit.html", _edit_context(request, env, values, windows))

    post = request.POST
    values = {field: post.get(field, "").strip() for field in TEXT_FIELDS + LIST_FIELDS + (
        "promotion_from", "freeze_until", "freeze_reason", "freeze_timezone")}
    values.update({field: bool(post.get(field)) for field in FLAG_FIELDS + ("clear_freeze", "clear_webhook")})
    windows = _windows_from_post(post)
    if post.get("add_window"):  # another blank row, nothing saved yet
        require(rules.edit_refusal(request.user, env))
        return render(request, "environments/form_edit.html", _edit_context(request, env, values, windows + [_blank_window()]))

    errors = []
    data = {field: values[field] for field in TEXT_FIELDS + FLAG_FIELDS + ("promotion_from",)}
    data["approver_groups"] = [name.strip() for name in values["approver_groups"].split(",") if name.strip()]
    data["checklist"] = [item.strip() for item in values["checklist"].splitlines() if item.strip()]
    data["deployment_windows"] = windows
    # The webhook URL holds its secret: never shown back, so an empty field keeps the stored one.
    webhook = post.get("webhook_url", "").strip()
    if webhook or values["clear_webhook"]:
        data["webhook_url"] = webhook
    freeze = _freeze_from_post(post, errors)
    if freeze != "unchanged":
        data["freeze"] = freeze
    try:
        if errors and policies.can_edit_environment(request.user, env):
            raise InvalidInput(errors)
        # A user who may not edit gets the service's refusal (403, audited), whatever the input.
        env = lifecycle.update_environment(request.user, env, data, request=request)
    except InvalidInput as exc:
        rows = windows + [_blank_window()]
        return form_page(request, "environments/form_edit.html", _edit_context(request, env, values, rows), exc.messages)
    messages.success(request, f"Environment {env.name} saved.")
    return redirect("environment_detail", slug=env.slug)


@login_required
@needs_role
def environment_delete(request, slug):
    env = visible_environment(request.user, slug)
    if request.method != "POST":
        require(deletion_refusal(request.user, env))
        return render(request, "confirm_delete.html", _delete_context(env))
    if request.POST.get("confirm_name", "").strip() != env.slug and deletion_refusal(request.user, env) is None:
        context = _delete_context(env) | {"errors": [f"type its name, {env.slug}, to delete this environment"]}
        return render(request, "confirm_delete.html", context, status=400)
    try:
        job = lifecycle.delete_environment(request.user, env, request=request)
    except Conflict as exc:
        audit_conflict(request, exc)
        messages.error(request, "; ".join(exc.messages))
        return redirect("environment_detail", slug=env.slug)
    if job is None and Environment.objects.filter(pk=env.pk, deletion_requested_at__isnull=False).exists():
        messages.success(request, f"Deleting {env.name} needs approval; it stays until an approver agrees.")
        return redirect("environment_detail", slug=env.slug)
    if job is None:
        messages.success(request, f"Environment {env.name} deleted.")
        return redirect("environment_list")
    messages.success(request, f"Environment {env.name} is being torn down: its namespace goes first.")
    return redirect("job_detail", job_id=job.pk)


def _delete_context(env):
    approval = " Deleting a staging or production environment needs an approver's yes first." \
        if env.tier in ("staging", "production") else ""
    return {
        "section": "environments",
        "title": f"Delete environment {env.name}?",
        "what": f"the environment {env.name} ({env.tier}, namespace {env.namespace})",
        "consequence": "Its namespace on the cluster (if Gantry created it) is deleted with everything in it. "
                       "The environment is then marked deleted and kept, with its deployment history and audit "
                       "events, under its name." + approval,
        "confirm_name": env.slug,
        "cancel_url": reverse("environment_detail", args=[env.slug]),
    }


@login_required
@needs_role
@require_POST
def environment_reprovision(request, slug):
    env = visible_environment(request.user, slug)
    return button_action(request, lambda: lifecycle.reprovision_environment(request.user, env, request=request),
                         done=f"Re-provisioning {env.name}.", back=reverse("environment_detail", args=[env.slug]),
                         then=lambda job: reverse("job_detail", args=[job.pk]))
