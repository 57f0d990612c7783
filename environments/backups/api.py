"""API v1 for backups (API.md: backup targets, backups, drills, restore)."""
from ninja import Router, Status

from environments.queries import visible_environment
from portal.validation import list_limit

from . import queries, services
from .models import Backup, BackupTarget
from .schemas import BackupStart, RestoreRequest, TargetChange, TargetCreate
from .serializers import BackupOut, DrillOut, RestoreOut, TargetOut, backup_out, drill_out, restore_out, target_out

router = Router(tags=["backups"])


def _target_out(target):
    target = queries.attach_status(queries.targets_with_status(BackupTarget.objects.filter(pk=target.pk)))[0]
    return target_out(target, target.last_good, target.last_drill)


@router.get("/environments/{slug}/backup-targets", response=list[TargetOut])
def list_targets(request, slug: str):
    env = visible_environment(request.user, slug)
    targets = queries.attach_status(queries.targets_with_status(BackupTarget.objects.filter(environment=env)))
    return [target_out(t, t.last_good, t.last_drill) for t in targets]


@router.post("/environments/{slug}/backup-targets", response={201: TargetOut})
def create_target(request, slug: str, payload: TargetCreate):
    env = visible_environment(request.user, slug)
    target = services.create_target(request.user, env, payload, request=request)
    return Status(201, _target_out(target))


@router.get("/environments/{slug}/backup-targets/{name}", response=TargetOut)
def get_target(request, slug: str, name: str):
    return _target_out(queries.visible_target(request.user, slug, name))


@router.patch("/environments/{slug}/backup-targets/{name}", response=TargetOut)
def update_target(request, slug: str, name: str, payload: TargetChange):
    target = queries.visible_target(request.user, slug, name)
    return _target_out(services.update_target(request.user, target, payload, request=request))


@router.delete("/environments/{slug}/backup-targets/{name}", response={204: None})
def delete_target(request, slug: str, name: str):
    target = queries.visible_target(request.user, slug, name)
    services.delete_target(request.user, target, request=request)
    return Status(204, None)


@router.get("/environments/{slug}/backups", response=list[BackupOut])
def list_backups(request, slug: str, target: str | None = None, state: str | None = None, limit: int = 50):
    env = visible_environment(request.user, slug)
    qs = Backup.objects.filter(target__environment=env).select_related("target__environment", "requested_by")
    if target:
        qs = qs.filter(target__name=target)
    if state:
        qs = qs.filter(state=state)
    backups = list(qs[:list_limit(limit)])
    drills = queries.last_drills(b.pk for b in backups)
    return [backup_out(b, drills.get(b.pk)) for b in backups]


@router.post("/environments/{slug}/backups", response={202: BackupOut})
def start_backup(request, slug: str, payload: BackupStart = None):
    env = visible_environment(request.user, slug)
    target = services.pick_target(env, payload.target if payload else None)
    backup = services.start_backup(target, user=request.user, request=request)
    return Status(202, backup_out(backup))


@router.get("/backups/{backup_id}", response=BackupOut)
def get_backup(request, backup_id: int):
    backup = queries.visible_backup(request.user, backup_id)
    return backup_out(backup, queries.last_drills([backup.pk]).get(backup.pk))


@router.post("/backups/{backup_id}/verify", response={202: DrillOut})
def verify_backup(request, backup_id: int):
    drill = services.start_drill(queries.visible_backup(request.user, backup_id), user=request.user, request=request)
    return Status(202, drill_out(drill))


@router.get("/drills/{drill_id}", response=DrillOut)
def get_drill(request, drill_id: int):
    return drill_out(queries.visible_drill(request.user, drill_id))


@router.post("/backups/{backup_id}/restore", response={202: RestoreOut})
def restore_backup(request, backup_id: int, payload: RestoreRequest):
    backup = queries.visible_backup(request.user, backup_id)
    restore = services.request_restore(backup, user=request.user, data=payload,
                                       request=request)
    return Status(202, restore_out(restore))


@router.get("/restores/{restore_id}", response=RestoreOut)
def get_restore(request, restore_id: int):
    return restore_out(queries.visible_restore(request.user, restore_id))
