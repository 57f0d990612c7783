"""The life of an environment: create, change its rules, provision, expire, tear down, and its status.
Every change goes through these functions (pages, API, jobs, commands)."""
from datetime import timedelta

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.accounts import policies
from portal.audit.services import diff, record
from portal.audit.writes import change_audited
from portal.errors import Conflict, InvalidInput, deny
from portal.jobs.services import enqueue_job

from . import guardrails
from . import policies as rules
from .choices import ENVIRONMENT_TRANSITIONS, EnvironmentStatus
from .clusters import default_cluster
from .models import Cluster, Environment
from .schemas import EnvironmentChange, EnvironmentCreate

RULE_FIELDS = ("required_approvals", "prevent_self_approval", "deployment_windows", "freeze_until", "freeze_reason",
               "approver_groups", "checklist", "promotion_from", "rollback_requires_approval")
ENV_AUDIT_FIELDS = ("name", "slug", "tier", "cluster", "namespace", "owner", "team", "description", "status",
                    "ttl_hours", "replicas", "blue_green_keep_minutes", "webhook_url", "notify_emails") + RULE_FIELDS


class TransitionError(Conflict):
    pass


def env_snapshot(env):
    data = {}
    for field in ENV_AUDIT_FIELDS:
        value = getattr(env, field)
        if field in ("cluster", "owner", "promotion_from"):
            value = str(value) if value is not None else None
        elif field == "freeze_until" and value is not None:
            value = value.isoformat()
        data[field] = value
    return data


def _clean_references(clean, instance=None):
    """What the declared schema cannot know: the cluster, approver groups and promotion source must exist."""
    errors = []
    if "cluster" in clean:
        name = clean["cluster"]
        clean["cluster"] = Cluster.objects.filter(name=name).first() if name else default_cluster()
        if name and clean["cluster"] is None:
            errors.append(f"cluster: no cluster named '{name}'")
    if clean.get("approver_groups"):
        known = set(Group.objects.filter(name__in=clean["approver_groups"]).values_list("name", flat=True))
        unknown = [g for g in clean["approver_groups"] if g not in known]
        if unknown:
            errors.append(f"approver_groups: no group named {', '.join(unknown)}")
    if "promotion_from" in clean:
        source_slug = clean["promotion_from"]
        source = Environment.objects.filter(slug=source_slug).first() if source_slug else None
        if source_slug and source is None:
            errors.append(f"promotion_from: no environment '{source_slug}'")
        elif source is not None and instance is not None and source.pk == instance.pk:
            errors.append("promotion_from: an environment cannot require itself")
        clean["promotion_from"] = source
    if "freeze" in clean:
        freeze = clean.pop("freeze")
        clean["freeze_until"], clean["freeze_reason"] = freeze["until"], freeze["reason"]
    if errors:
        raise InvalidInput(errors)
    return clean


def create_environment(user, data, request=None):
    """`data`: a dict (a page's form, a command) or the API's EnvironmentCreate; either way validated by it."""
    given = EnvironmentCreate.given(data)
    if given.get("template"):  # self-service: the template's guardrails and approval rules apply
        from .self_service import request_environment

        return request_environment(user, given, request=request)
    reason = rules.create_refusal(user, given.get("tier"))
    if reason:
        deny("environment.create", user=user, request=request, reason=reason, environment=given.get("slug") or "")
    clean = EnvironmentCreate.validated(data)
    clean.pop("template", None), clean.pop("parameters", None)
    clean.setdefault("cluster", None)
    if clean.get("ttl_hours") is None:
        clean.pop("ttl_hours", None)
    clean = _clean_references(clean)
    for field, value in rules.tier_defaults(clean["tier"]).items():
        clean.setdefault(field, value)
    problems = guardrails.name_problems(clean["slug"], cluster=clean.get("cluster"), namespace=clean["namespace"],
                                        field="slug")
    if Environment.objects.filter(name=clean["name"]).exists():
        problems.append(f"name: an environment named '{clean['name']}' already exists")
    if problems:
        raise InvalidInput(problems)
    env = Environment(owner=user if user.is_authenticated else None, **clean)
    if env.ttl_hours:
        env.expires_at = timezone.now() + timedelta(hours=env.ttl_hours)
    env.status = EnvironmentStatus.PROVISIONING if env.cluster_id else EnvironmentStatus.READY
    try:
        with transaction.atomic():
            env.save()
            record("environment.create", actor=user, request=request, target=env, changes=diff({}, env_snapshot(env)))
            if env.cluster_id:
                enqueue_job("environment.provision", target=env, environment=env, requested_by=user, request=request)
    except IntegrityError:
        raise Conflict("an environment with this slug, name or namespace was created at the same moment; try again") from None
    return env


def update_environment(user, env, data, request=None):
    reason = rules.edit_refusal(user, env)
    if reason:
        deny("environment.update", user=user, request=request, target=env, reason=reason)
    clean = _clean_references(EnvironmentChange.validated(data), instance=env)
    if "name" in clean and Environment.objects.filter(name=clean["name"]).exclude(pk=env.pk).exists():
        raise InvalidInput(f"name: an environment named '{clean['name']}' already exists")
    return change_audited(env, clean, _update_action, snapshot=env_snapshot, actor=user, request=request)


def _update_action(changes):
    return "environment.rules_update" if set(changes) & set(RULE_FIELDS) else "environment.update"


def delete_environment(user, env, request=None):
    """Delete an environment: its namespace is removed by a teardown job (the environment shows
    `deleting`), then it is marked `deleted` and kept for history and audit. The owner may delete
    their own preview or development environment, an admin any; a staging or production one is only
    requested here and waits for approval (environments.approvals). Returns the teardown job, or None
    when the deletion waits for approval."""
    from .approvals import request_deletion
    from .guardrails import deletion_refusal, deletion_needs_approval

    refusal = deletion_refusal(user, env)
    if refusal:
        deny("environment.delete", user=user, request=request, target=env, reason=refusal)
    if env.status == EnvironmentStatus.DELETING or env.status in EnvironmentStatus.GONE:
        raise TransitionError(f"environment '{env.slug}' is {env.status}; there is nothing left to delete")
    if deletion_needs_approval(env):
        request_deletion(user, env, request=request)
        return None
    return _tear_down(env, actor=user, request=request, action="environment.delete")


def expire_environments(now=None):
    """Periodic (the reaper): tear down environments whose time to live ran out. Never touches one
    without a TTL; one with a deployment under way waits for the next round."""
    now = now or timezone.now()
    expired = 0
    due = (Environment.objects.filter(expires_at__lte=now, ttl_hours__isnull=False)
           .exclude(status__in=(EnvironmentStatus.DELETING, *EnvironmentStatus.GONE)).only("pk", "ttl_hours"))
    for env in due:
        try:
            _tear_down(env, actor=None, action="environment.expired", reason=f"its time to live ({env.ttl_hours} h) ran out")
            expired += 1
        except Conflict:
            continue  # a deployment is under way; the next round tries again
    return expired


def _tear_down(env, *, actor, action, request=None, reason=""):
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=env.pk)  # deployments start under this lock too
        active = env.deployments.filter(state__in=["approved", "queued", "running"]).count()
        if active:
            raise Conflict(f"environment '{env.slug}' has {active} deployment(s) approved, queued or running; "
                           "cancel them or let them finish first")
        if env.status == EnvironmentStatus.DELETING or env.status in EnvironmentStatus.GONE:
            raise TransitionError(f"environment '{env.slug}' is already {env.status}")
        detail = {"reason": reason} if reason else None
        record(action, actor=actor, actor_name=None if actor else "gantry-scheduler", request=request, target=env,
               detail=detail)
        set_environment_status(env, EnvironmentStatus.DELETING, actor=actor, actor_name="gantry-scheduler",
                               request=request)
        if env.cluster_id is None:
            set_environment_status(env, EnvironmentStatus.DELETED, actor=actor, actor_name="gantry-scheduler",
                                   request=request, reason="it has no cluster; nothing to remove")
            return None
        return enqueue_job("environment.teardown", target=env, environment=env, requested_by=actor, request=request)


def finish_teardown(env):
    """The teardown job saw the namespace gone: the environment is marked `deleted` (kept, audited)."""
    env = Environment.objects.filter(pk=env.pk).first()
    if env is None or env.status == EnvironmentStatus.DELETED:
        return
    set_environment_status(env, EnvironmentStatus.DELETED, reason="its namespace is gone")


def set_environment_status(env, new_status, *, reason="", actor=None, actor_name="gantry-worker", request=None,
                           detail=None):
    """Move an environment along its state table; audited. The one writer of `status` after creation:
    jobs call it, and so do approvals (actor: the approver) and teardowns."""
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=env.pk)
        if new_status not in ENVIRONMENT_TRANSITIONS.get(env.status, set()):
            raise TransitionError(f"environment '{env.slug}' cannot go from {env.status} to {new_status}")
        old = env.status
        env.status = new_status
        fields = ["status", "updated_at"]
        if new_status == EnvironmentStatus.DELETED:
            env.deleted_at = timezone.now()
            fields.append("deleted_at")
        env.save(update_fields=fields)
        detail = dict(detail or {}) | ({"reason": reason} if reason else {})
        record(f"environment.{new_status}", actor=actor, actor_name=None if actor else actor_name, request=request,
               target=env, changes={"status": [old, new_status]}, detail=detail or None)
    return env


def reprovision_environment(user, env, request=None):
    if not policies.can_edit_environment(user, env):
        deny("environment.provision", user=user, request=request, target=env, reason="only an admin can re-provision an environment")
    if env.cluster_id is None:
        raise Conflict(f"environment '{env.slug}' has no cluster to provision")
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=env.pk)
        if EnvironmentStatus.PROVISIONING not in ENVIRONMENT_TRANSITIONS.get(env.status, set()):
            raise TransitionError(f"environment '{env.slug}' is {env.status}; wait until it is ready or failed")
        set_environment_status(env, EnvironmentStatus.PROVISIONING, actor=user, request=request)
        return enqueue_job("environment.provision", target=env, environment=env, requested_by=user, request=request)
