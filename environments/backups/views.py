"""Backup pages: an environment's targets and backups (live), the target form, drills, restores."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from environments.queries import visible_environment
from portal import live
from portal.errors import Conflict, InvalidInput, audit_conflict
from portal.pages import button_action, form_page, needs_role, paginate, require

from . import policies, queries, services
from .choices import BackupState
from .models import Backup, BackupTarget, Drill, Restore
from .schemas import default_local_path


def target_rows(targets, now=None):
    """What the status include shows per target: RPO colour and age, last drill and its RTO against the target."""
    now = now or timezone.now()
    rows = []
    for target in targets:
        good_at = target.last_good.finished_at if target.last_good else None
        rows.append({
            "target": target,
            "rpo": policies.rpo_color(good_at, target.rpo_minutes, now),
            "last_good_at": good_at,
            "age": (now - good_at) if good_at else None,
            "last_drill": target.last_drill,
            "last_passed_drill": target.last_passed_drill,
            "rto_met": policies.rto_met(target.last_passed_drill.restore_seconds, target.rto_minutes)
            if target.last_passed_drill else None,
            "warning": services.warning_for(target),
        })
    return rows


def status_rows_for(environment):
    return target_rows(queries.attach_status(queries.targets_with_status(
        BackupTarget.objects.filter(environment=environment))))


def _list_parts(env):
    return (live.state_of(Backup.objects.filter(target__environment=env), "created_at", "started_at", "finished_at"),
            live.state_of(Backup.objects.filter(target__environment=env, state=BackupState.RUNNING), "created_at"),
            tuple(Backup.objects.filter(target__environment=env, state=BackupState.RUNNING)
                  .values_list("pk", "bytes_done")),
            live.state_of(Drill.objects.filter(backup__target__environment=env), "created_at", "finished_at"),
            tuple(Restore.objects.filter(backup__target__environment=env).values_list("pk", "state")[:10]),
            timezone.now().strftime("%Y-%m-%d %H:%M"))


def _list_context(request, env):
    targets = status_rows_for(env)
    page = paginate(request, Backup.objects.filter(target__environment=env)
                    .select_related("target__environment", "requested_by"))
    drills = queries.last_drills(b.pk for b in page.object_list)
    for backup in page.object_list:
        backup.last_drill = drills.get(backup.pk)
    return {"env": env, "targets": targets, "page": page, "can_manage": policies.may_manage(request.user, env),
            "restores": list(restores_of(env))}


@login_required
@needs_role
def backup_list(request, slug):
    env = visible_environment(request.user, slug)
    poll = live.Poll(request)
    if poll.wants("backups-live"):
        return poll.respond(_list_parts(env), lambda tag: render(
            request, "backups/_list.html", dict(_list_context(request, env), live_version=tag)))
    context = _list_context(request, env)
    context.update(section="environments", live_version=poll.version_for(_list_parts(env), "backups-live"))
    return render(request, "backups/list.html", context)


TARGET_FIELDS = ("name", "dsn", "schedule", "timezone", "retention_days", "keep_last", "rpo_minutes", "rto_minutes",
                 "verify_schedule", "verify_sql", "deploy_guard", "deploy_guard_minutes")
DEST_FIELDS = ("path", "bucket", "prefix", "endpoint_url", "region", "access_key_id", "secret_access_key")
SECRET_FIELDS = {"dsn", "access_key_id", "secret_access_key"}


def _target_data(post):
    """The form's fields as the operation's (environments.backups.schemas), which checks them: a blank
    field is not given (it keeps its value, or takes its default), but a blank drill schedule or query
    clears it; numbers stay text (the schema reads a form's digits)."""
    data = {}
    for name in TARGET_FIELDS:
        value = post.get(name, "").strip()
        if value or name in ("verify_schedule", "verify_sql"):
            data[name] = value
    kind = post.get("destination_kind", "local")
    destination = {"kind": kind}
    for name in DEST_FIELDS:
        value = post.get(f"destination_{name}", "").strip()
        if value:
            destination[name] = value
    if kind == "local":
        destination = {"kind": "local", **({"path": destination["path"]} if destination.get("path") else {})}
    data["destination"] = destination
    return data


def _target_form(request, context, initial, save, what, done):
    """The target form, to add or change one. GET: the form with `initial`, to who may manage the
    environment's backups (`what` names the refusal). POST: `save(data)` (the service, which checks
    and audits); a refusal shows the form again (without the secrets), success goes to the backup
    list saying `done` and the target's warning, if any."""
    env = context["env"]
    if request.method != "POST":
        require(policies.manage_refusal(request.user, env, what))
        return render(request, "backups/target_form.html", dict(context, values=initial))
    try:
        target = save(_target_data(request.POST))
    except InvalidInput as exc:
        values = {k: v for k, v in request.POST.items() if k.removeprefix("destination_") not in SECRET_FIELDS}
        return form_page(request, "backups/target_form.html", dict(context, values=values), exc.messages)
    warning = services.warning_for(target)
    messages.success(request, f"Backup target {target.name} {done}.")
    if warning:
        messages.warning(request, f"Warning: {warning}.")
    return redirect("backup_list", slug=env.slug)


@login_required
@needs_role
def target_create(request, slug):
    env = visible_environment(request.user, slug)
    context = {"section": "environments", "env": env, "default_path": default_local_path(),
               "default_timezone": getattr(env, "timezone", "") or "UTC"}
    return _target_form(request, context, {"destination_kind": "local"},
                        lambda data: services.create_target(request.user, env, data, request=request),
                        "add backup targets", "added")


def _target_values(target):
    """The edit form's initial values: everything but the secrets (DSN, S3 keys), which stay write-only."""
    values = {name: getattr(target, name) for name in TARGET_FIELDS if name not in SECRET_FIELDS}
    destination = target.destination or {}
    values["destination_kind"] = destination.get("kind", "local")
    for name in DEST_FIELDS:
        if name not in SECRET_FIELDS:
            values[f"destination_{name}"] = destination.get(name) or ""
    values["enabled"] = target.enabled
    return values


@login_required
@needs_role
def target_edit(request, slug, name):
    """Change a target: the same rules as adding one (environments.backups.schemas); a blank DSN or S3 key keeps
    the stored one."""
    target = queries.visible_target(request.user, slug, name)
    env = target.environment
    context = {"section": "environments", "env": env, "target": target, "default_path": default_local_path(),
               "default_timezone": target.timezone}
    return _target_form(request, context, _target_values(target),
                        lambda data: services.update_target(request.user, target,
                                                            dict(data, enabled=request.POST.get("enabled") == "1"),
                                                            request=request),
                        "change backup targets", "saved")


@login_required
@needs_role
@require_POST
def backup_start(request, slug):
    env = visible_environment(request.user, slug)

    def start():
        target = services.pick_target(env, request.POST.get("target") or None)
        return services.start_backup(target, user=request.user, request=request)

    return button_action(request, start, done=lambda backup: f"Backup #{backup.pk} of {backup.target.name} queued.",
                         back=reverse("backup_list", args=[env.slug]), refusals=(Conflict, InvalidInput))


@login_required
@needs_role
@require_POST
def backup_verify(request, backup_id):
    backup = queries.visible_backup(request.user, backup_id)
    return button_action(request, lambda: services.start_drill(backup, user=request.user, request=request),
                         done=lambda drill: f"Restore drill #{drill.pk} of backup #{backup.pk} queued.",
                         back=reverse("backup_list", args=[backup.target.environment.slug]),
                         then=lambda drill: reverse("drill_detail", args=[drill.pk]))


@login_required
@needs_role
def drill_detail(request, drill_id):
    drill = queries.visible_drill(request.user, drill_id)
    poll = live.Poll(request)
    parts = (drill.state, drill.finished_at)
    context = {"drill": drill, "backup": drill.backup, "env": drill.backup.target.environment,
               "section": "environments"}
    if poll.wants("drill-live"):
        return poll.respond(parts, lambda tag: render(request, "backups/_drill.html", dict(context, live_version=tag)))
    finished = drill.state in ("passed", "failed")
    context["live_version"] = None if finished else poll.version_for(parts, "drill-live")
    return render(request, "backups/drill.html", context)


@login_required
@needs_role
def backup_restore(request, backup_id):
    backup = queries.visible_backup(request.user, backup_id)
    env = backup.target.environment
    context = {"section": "environments", "backup": backup, "env": env,
               "needs_approval": policies.restore_needs_approval(env)}
    if request.method != "POST":
        require(policies.manage_refusal(request.user, env, "restore backups"))
        return render(request, "backups/restore_form.html", dict(context, values={}))
    data = {"database": request.POST.get("database", "").strip() or None,
            "allow_existing": request.POST.get("allow_existing") == "1"}
    try:
        restore = services.request_restore(backup, user=request.user, data=data, request=request)
    except InvalidInput as exc:
        return form_page(request, "backups/restore_form.html", dict(context, values=request.POST), exc.messages)
    except Conflict as exc:
        audit_conflict(request, exc)
        return form_page(request, "backups/restore_form.html", dict(context, values=request.POST), exc.messages,
                         status=409)
    if restore.state == "pending_approval":
        messages.success(request, f"Restore #{restore.pk} into {restore.destination_display} waits for "
                                  f"{env.required_approvals} approval(s) in {env.slug}.")
    else:
        messages.success(request, f"Restore #{restore.pk} into {restore.destination_display} queued.")
    return redirect("backup_list", slug=env.slug)


def restores_of(env):
    return Restore.objects.filter(backup__target__environment=env).select_related("requested_by")[:10]


def status_rows_by_environment(environments, now=None):
    """{environment id: [badge row per target]} for many environments in one query (the board's column
    headers): RPO colour of the newest good backup, the newest drill's state, the newest passing drill's
    restore time against the RTO. No query when there is no environment."""
    ids = [env.pk for env in environments]
    if not ids:
        return {}
    now = now or timezone.now()
    grouped = {}
    for target in queries.board_targets(ids):
        seconds = target.last_passed_seconds
        grouped.setdefault(target.environment_id, []).append({
            "target": target,
            "rpo": policies.rpo_color(target.last_good_at, target.rpo_minutes, now),
            "last_good_at": target.last_good_at,
            "drill_state": target.last_drill_state,
            "last_drill_id": target.last_drill_id,
            "restore_seconds": seconds,
            "rto_met": policies.rto_met(seconds, target.rto_minutes) if seconds is not None else None,
        })
    return grouped
