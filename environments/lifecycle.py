"""The life of an environment: create, change its rules, provision, expire, tear down, and its status.
Every change goes through these functions (pages, API, jobs, commands)."""
from datetime import timedelta

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.accounts import policies
from portal.audit.services import diff, record
from portal.errors import Conflict, InvalidInput, deny
from portal.jobs.services import enqueue_job
from portal.validation import check_dns_label, check_text, slugify_name

from . import policies as rules
from .choices import ENVIRONMENT_TRANSITIONS, TIERS, EnvironmentStatus
from .clusters import default_cluster
from .models import Cluster, Environment

RULE_FIELDS = ("required_approvals", "prevent_self_approval", "deployment_windows", "freeze_until", "freeze_reason",
               "approver_groups", "checklist", "promotion_from", "rollback_requires_approval")
ENV_AUDIT_FIELDS = ("name", "slug", "tier", "cluster", "namespace", "owner", "team", "description", "status",
                    "ttl_hours", "replicas", "blue_green_keep_minutes", "webhook_url", "notify_emails") + RULE_FIELDS
EDITABLE_FIELDS = {"name", "team", "description", "required_approvals", "prevent_self_approval", "deployment_windows",
                   "freeze", "approver_groups", "checklist", "promotion_from", "rollback_requires_approval",
                   "replicas", "blue_green_keep_minutes", "webhook_url", "notify_emails"}


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


def _clean_int(value, field, low, high, errors, unit=""):
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value)
        if not low <= number <= high:
            raise ValueError
        return number
    except (TypeError, ValueError):
        if unit:
            errors.append(f"{field}: '{value}' must be a whole number of {unit} between {low} and {high}")
        else:
            errors.append(f"{field}: '{value}' must be a whole number from {low} to {high}")
        return None


def _clean_placement(data, clean, errors):
    """What is fixed at creation: slug, tier, cluster, namespace, time to live."""
    slug = data.get("slug") or slugify_name(clean.get("name") or "")
    clean["slug"] = check_dns_label(slug, "slug", errors)
    tier = data.get("tier")
    if tier not in TIERS:
        errors.append(f"tier: '{tier}' is not one of {', '.join(TIERS)}")
    clean["tier"] = tier
    cluster_name = data.get("cluster")
    if cluster_name:
        cluster = Cluster.objects.filter(name=cluster_name).first()
        if cluster is None:
            errors.append(f"cluster: no cluster named '{cluster_name}'")
        clean["cluster"] = cluster
    else:
        clean["cluster"] = default_cluster()
    namespace = data.get("namespace") or clean.get("slug")
    if namespace:
        clean["namespace"] = check_dns_label(namespace, "namespace", errors)
        if namespace == "default" or namespace.startswith("kube-"):
            errors.append(f"namespace: '{namespace}' belongs to the cluster itself; choose another")
    if data.get("ttl_hours") not in (None, ""):
        ttl = _clean_int(data.get("ttl_hours"), "ttl_hours", 1, 24 * 90, errors, unit="hours")
        if ttl is not None:
            clean["ttl_hours"] = ttl


def _clean_scalars(data, clean, errors):
    """Texts, whole numbers and flags."""
    for field, max_length in (("team", 100), ("description", 2000)):
        if field in data:
            clean[field] = check_text(data.get(field), field, errors, required=False, max_length=max_length) or ""
    for field, low, high in (("required_approvals", 0, 10), ("replicas", 1, 100), ("blue_green_keep_minutes", 0, 1440)):
        if field in data:
            value = _clean_int(data.get(field), field, low, high, errors)
            if value is not None:
                clean[field] = value
    for field in ("prevent_self_approval", "rollback_requires_approval"):
        if field in data:
            value = data.get(field)
            if not isinstance(value, bool):
                errors.append(f"{field}: must be true or false")
            clean[field] = value


def _clean_lists(data, clean, errors):
    """Approver groups (which must exist) and the approval checklist."""
    for field, max_items in (("approver_groups", 20), ("checklist", 30)):
        if field in data:
            items = data.get(field) or []
            if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() and len(i) <= 200 for i in items):
                errors.append(f"{field}: must be a list of non-empty texts (at most 200 characters each)")
            elif len(items) > max_items:
                errors.append(f"{field}: at most {max_items} items")
            else:
                clean[field] = [i.strip() for i in items]
    if clean.get("approver_groups"):
        known = set(Group.objects.filter(name__in=clean["approver_groups"]).values_list("name", flat=True))
        unknown = [g for g in clean["approver_groups"] if g not in known]
        if unknown:
            errors.append(f"approver_groups: no group named {', '.join(unknown)}")


def _clean_promotion_from(data, clean, errors, instance):
    source_slug = data.get("promotion_from")
    if source_slug in (None, ""):
        clean["promotion_from"] = None
        return
    source = Environment.objects.filter(slug=source_slug).first()
    if source is None:
        errors.append(f"promotion_from: no environment '{source_slug}'")
    elif instance is not None and source.pk == instance.pk:
        errors.append("promotion_from: an environment cannot require itself")
    clean["promotion_from"] = source


def _clean_notifications(data, clean, errors):
    """Where notifications go: a webhook URL and e-mail addresses."""
    if "webhook_url" in data:
        url = data.get("webhook_url") or ""
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
                if len(url) > 500:
                    raise ValidationError("too long")
            except (ValidationError, TypeError):
                errors.append("webhook_url: not a valid http(s) URL of at most 500 characters")
            else:
                from portal import outbound

                try:
                    outbound.check_url(url, resolve_names=False)
                except outbound.UnsafeDestination as exc:
                    errors.append(f"webhook_url: {exc}")
        clean["webhook_url"] = url
    if "notify_emails" in data:
        text = data.get("notify_emails") or ""
        addresses = [a.strip() for a in str(text).split(",") if a.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                errors.append(f"notify_emails: '{address}' is not an e-mail address")
        clean["notify_emails"] = ", ".join(addresses)


def _clean_schedule(data, clean, errors):
    """Deployment windows and the freeze (rules in environments.policies)."""
    if "deployment_windows" in data:
        windows, window_errors = rules.clean_windows(data.get("deployment_windows"))
        errors.extend(window_errors)
        clean["deployment_windows"] = windows
    if "freeze" in data:
        freeze, freeze_errors = rules.clean_freeze(data.get("freeze"))
        errors.extend(freeze_errors)
        if freeze is not None:
            clean["freeze_until"], clean["freeze_reason"] = freeze


def _clean_environment(data, errors, instance=None):
    clean = {}
    creating = instance is None
    if creating or "name" in data:
        clean["name"] = check_text(data.get("name"), "name", errors, max_length=100)
    if creating:
        _clean_placement(data, clean, errors)
    _clean_scalars(data, clean, errors)
    _clean_lists(data, clean, errors)
    if "promotion_from" in data:
        _clean_promotion_from(data, clean, errors, instance)
    _clean_notifications(data, clean, errors)
    _clean_schedule(data, clean, errors)
    if creating:
        for field, value in rules.tier_defaults(clean.get("tier")).items():
            clean.setdefault(field, value)
    return clean


def create_environment(user, data, request=None):
    if data.get("template"):  # self-service: the template's guardrails and approval rules apply
        from .self_service import request_environment

        return request_environment(user, data, request=request)
    tier = data.get("tier")
    if not rules.creatable_tiers(user) or (tier in TIERS and not rules.can_create_environment(user, tier)):
        allowed = rules.creatable_tiers(user)
        reason = (f"you may create {' and '.join(allowed)} environments only" if allowed
                  else "creating environments needs the admin role, or deployer for development and preview")
        deny("environment.create", user=user, request=request, reason=reason, environment=data.get("slug") or "")
    errors = []
    clean = _clean_environment(data, errors)
    if errors:
        raise InvalidInput(errors)
    duplicates = []
    if Environment.objects.filter(slug=clean["slug"]).exists():
        duplicates.append(f"slug: an environment '{clean['slug']}' already exists; choose another slug")
    if Environment.objects.filter(name=clean["name"]).exists():
        duplicates.append(f"name: an environment named '{clean['name']}' already exists")
    if clean.get("cluster") and Environment.objects.filter(cluster=clean["cluster"], namespace=clean["namespace"]).exists():
        duplicates.append(f"namespace: '{clean['namespace']}' is already used on cluster '{clean['cluster']}'")
    if duplicates:
        raise InvalidInput(duplicates)
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
    if not policies.can_edit_environment(user, env):
        deny("environment.update", user=user, request=request, target=env,
             reason="only an admin can change an environment and its protection rules")
    errors = []
    unknown = set(data) - EDITABLE_FIELDS
    if unknown:
        errors.append(f"cannot change {', '.join(sorted(unknown))} here (slug, tier, cluster and namespace are fixed at creation)")
    clean = _clean_environment(data, errors, instance=env)
    if errors:
        raise InvalidInput(errors)
    if "name" in clean and Environment.objects.filter(name=clean["name"]).exclude(pk=env.pk).exists():
        raise InvalidInput(f"name: an environment named '{clean['name']}' already exists")
    if "freeze" in data and data["freeze"] is None:
        clean["freeze_until"], clean["freeze_reason"] = None, ""
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=env.pk)
        before = env_snapshot(env)
        for field, value in clean.items():
            setattr(env, field, value)
        env.save()
        changes = diff(before, env_snapshot(env))
        if changes:
            action = "environment.rules_update" if set(changes) & set(RULE_FIELDS) else "environment.update"
            record(action, actor=user, request=request, target=env, changes=changes)
    return env


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
