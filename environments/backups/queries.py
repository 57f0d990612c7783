"""Reading backups for pages and the API in a bounded number of queries."""
from django.db.models import OuterRef, Subquery

from environments.queries import visible_environment
from portal.errors import NotFound

from . import policies
from .choices import BackupState, DrillState
from .models import Backup, BackupTarget, Drill, Restore


def _visible(user, model, pk, path):
    """Row `pk` of `model` if `user` may see the environment at `path`; NotFound otherwise (pages show
    the 404 page through `portal.pages.needs_role`, the API answers 404), so its existence is not revealed."""
    found = model.objects.select_related(path, "requested_by").filter(pk=pk).first()
    environment = found
    for step in path.split("__"):
        environment = getattr(environment, step, None)
    if found is None or not policies.may_view(user, environment):
        raise NotFound(f"no {model._meta.model_name} #{pk}")
    return found


def visible_target(user, slug, name):
    """The backup target `name` of the environment `slug`, if `user` may see that environment; NotFound otherwise."""
    env = visible_environment(user, slug)
    target = BackupTarget.objects.select_related("environment").filter(environment=env, name=name).first()
    if target is None:
        raise NotFound(f"{env.slug} has no backup target named {name}")
    return target


def visible_backup(user, backup_id):
    return _visible(user, Backup, backup_id, "target__environment")


def visible_drill(user, drill_id):
    return _visible(user, Drill, drill_id, "backup__target__environment")


def visible_restore(user, restore_id):
    return _visible(user, Restore, restore_id, "backup__target__environment")


def last_drills(backup_ids):
    """{backup id: its newest drill} in one query."""
    found = {}
    for drill in Drill.objects.filter(backup_id__in=list(backup_ids)).order_by("backup_id", "-created_at", "-id"):
        found.setdefault(drill.backup_id, drill)
    return found


def targets_with_status(queryset=None):
    """Targets annotated with the newest good backup's time and ids of the newest finished and passing drills."""
    queryset = BackupTarget.objects.all() if queryset is None else queryset
    good = Backup.objects.filter(target=OuterRef("pk"), state=BackupState.SUCCEEDED).order_by("-finished_at")
    drills = Drill.objects.filter(backup__target=OuterRef("pk"), state__in=(DrillState.PASSED, DrillState.FAILED)) \
        .order_by("-finished_at", "-id")
    return queryset.select_related("environment").annotate(
        last_good_id=Subquery(good.values("pk")[:1]),
        last_good_at=Subquery(good.values("finished_at")[:1]),
        last_drill_id=Subquery(drills.values("pk")[:1]),
        last_passed_drill_id=Subquery(drills.filter(state=DrillState.PASSED).values("pk")[:1]),
    )


def attach_status(targets):
    """Give each annotated target `.last_good`, `.last_drill` and `.last_passed_drill` (two queries at most)."""
    targets = list(targets)
    backup_ids = {t.last_good_id for t in targets if t.last_good_id}
    backups = Backup.objects.in_bulk(backup_ids)
    drill_ids = {i for t in targets for i in (t.last_drill_id, t.last_passed_drill_id) if i}
    drills = Drill.objects.in_bulk(drill_ids)
    for target in targets:
        target.last_good = backups.get(target.last_good_id)
        target.last_drill = drills.get(target.last_drill_id)
        target.last_passed_drill = drills.get(target.last_passed_drill_id)
    return targets


def board_targets(environment_ids):
    """The targets of these environments with what a board badge needs (newest good backup's time, the
    newest finished drill's state, the newest passing drill's restore time): one query for them all."""
    good = Backup.objects.filter(target=OuterRef("pk"), state=BackupState.SUCCEEDED).order_by("-finished_at")
    drills = Drill.objects.filter(backup__target=OuterRef("pk"), state__in=(DrillState.PASSED, DrillState.FAILED)) \
        .order_by("-finished_at", "-id")
    return BackupTarget.objects.filter(environment_id__in=list(environment_ids)).only(
        "id", "environment_id", "name", "rpo_minutes", "rto_minutes", "enabled").annotate(
        last_good_at=Subquery(good.values("finished_at")[:1]),
        last_drill_id=Subquery(drills.values("pk")[:1]),
        last_drill_state=Subquery(drills.values("state")[:1]),
        last_passed_seconds=Subquery(drills.filter(state=DrillState.PASSED).values("restore_seconds")[:1]),
    ).order_by("environment_id", "name")
