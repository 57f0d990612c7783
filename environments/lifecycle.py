"""The life of an environment: create it, change its rules, provision it again, delete it (through
environments.teardown, or a request for approval). Every change goes through these functions (pages,
API, jobs, commands); its status only through environments.status."""
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
from .approvals import request_deletion
from .choices import ENVIRONMENT_TRANSITIONS, EnvironmentStatus
from .clusters import default_cluster
from .guardrails import deletion_needs_approval, deletion_refusal
from .models import Cluster, Environment
from .schemas import EnvironmentChange, EnvironmentCreate
from .self_service import request_environment
from .snapshot import RULE_FIELDS, env_snapshot
from .status import TransitionError, set_environment_status
from .teardown import expire_environments, tear_down  # noqa: F401  (expire_environments: see periodic.py)


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

    refusal = deletion_refusal(user, env)
    if refusal:
        deny("environment.delete", user=user, request=request, target=env, reason=refusal)
    if env.status == EnvironmentStatus.DELETING or env.status in EnvironmentStatus.GONE:
        raise TransitionError(f"environment '{env.slug}' is {env.status}; there is nothing left to delete")
    if deletion_needs_approval(env):
        request_deletion(user, env, request=request)
        return None
    return tear_down(env, actor=user, request=request, action="environment.delete")


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
