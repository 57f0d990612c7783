"""Who may do what. Pages, the API, jobs and commands all ask these functions (DESIGN rule 1).

A role is global (environment is null) or scoped to one environment. Roles do not imply each
other, except admin, which implies every role in its scope. Any role on an environment lets its
holder see that environment; a user with no role at all sees nothing.
"""
from .choices import ADMIN, APPROVER, DEPLOYER, VIEWER  # noqa: F401  (re-exported for callers)
from .models import RoleAssignment

_CACHE_ATTR = "_gantry_roles"


def _grants(user):
    """The set of (role, environment_id or None) the user holds, cached on the user object."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    grants = getattr(user, _CACHE_ATTR, None)
    if grants is None:
        grants = frozenset(RoleAssignment.objects.filter(user=user).values_list("role", "environment_id"))
        setattr(user, _CACHE_ATTR, grants)
    return grants


def forget_roles(user):
    """Drop the cached roles (after a grant or revoke in the same request)."""
    if user is not None and hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def is_admin(user):
    return (ADMIN, None) in _grants(user)


def admin_refusal(user, what, environment=None):
    """Why `user` may not `what` (a thing only an admin does: of `environment`, or anywhere), or None.
    One wording for the page that hides a form and the service that refuses the change."""
    allowed = has_role(user, ADMIN, environment) if environment is not None else is_admin(user)
    return None if allowed else f"only an admin can {what}"


def has_role(user, role, environment=None):
    """True when the user holds `role` globally, or for `environment` when one is given."""
    grants = _grants(user)
    if (ADMIN, None) in grants or (role, None) in grants:
        return True
    if environment is None:
        return False
    env_id = environment if isinstance(environment, int) else environment.pk
    return (role, env_id) in grants or (ADMIN, env_id) in grants


def has_any_role(user):
    return bool(_grants(user))


def can_view_everything(user):
    grants = _grants(user)
    return any(env_id is None for _, env_id in grants)


def visible_environment_ids(user):
    """None means all environments; otherwise the set of ids the user may see."""
    if can_view_everything(user):
        return None
    return {env_id for _, env_id in _grants(user) if env_id is not None}


def restrict_environments(user, queryset):
    """The one place that narrows an environment queryset to what the user may see."""
    ids = visible_environment_ids(user)
    return queryset if ids is None else queryset.filter(pk__in=ids)


def restrict_environments_of(user, queryset, field="environment_id"):
    """Narrow a queryset of things that belong to an environment (deployments, jobs) the same way."""
    ids = visible_environment_ids(user)
    return queryset if ids is None else queryset.filter(**{f"{field}__in": ids})


def can_view_environment(user, environment):
    ids = visible_environment_ids(user)
    return ids is None or environment.pk in ids


def can_view_catalog(user):
    """The service catalog and the job list are visible to anyone holding some role."""
    return has_any_role(user)


def can_manage_services(user):
    return is_admin(user)


def can_view_audit(user):
    """Auditors are global viewers; admins see everything too."""
    return has_role(user, VIEWER) or is_admin(user)


def can_edit_environment(user, environment):
    return has_role(user, ADMIN, environment)


def can_manage_job(user, job):
    """Retry and cancel a job: an admin (global or of its environment), or whoever requested it."""
    if job.requested_by_id is not None and job.requested_by_id == user.pk:
        return True
    return has_role(user, ADMIN, job.environment_id) if job.environment_id else is_admin(user)


def can_register_releases(user):
    """Releases belong to no environment: a deployer (or admin) of any scope may register them."""
    return any(role in (DEPLOYER, ADMIN) for role, _ in _grants(user))


def group_names(user):
    """The user's group names, cached on the user object like the roles."""
    names = getattr(user, "_gantry_groups", None)
    if names is None:
        names = frozenset(user.groups.values_list("name", flat=True)) if user.is_authenticated else frozenset()
        user._gantry_groups = names
    return names


def environment_ids_with_role(user, role):
    """None when the user holds `role` (or admin) globally; else the ids of environments where they do."""
    grants = _grants(user)
    if (role, None) in grants or (ADMIN, None) in grants:
        return None
    return {env_id for r, env_id in grants if env_id is not None and r in (role, ADMIN)}


def approver_refusal(user, env, decision, *, what, subject, closed, requested_by_id, self_approval, decided):
    """The one rule of every decision in Gantry, on deployments and on environment requests alike:
    the approver role for the environment, its approver groups, only while the request waits
    (`closed` says why not), never the requester's own approval where `self_approval` names why,
    one decision per approver (`decided`). Returns why `user` may not decide, or None."""
    if not has_role(user, APPROVER, env):
        return f"you need the approver role for {env.slug} to {decision} {what} there"
    if env.approver_groups and not group_names(user) & set(env.approver_groups):
        return f"approvers of {env.slug} must be in one of the groups: {', '.join(env.approver_groups)}"
    if closed:
        return closed
    if decision == "approve" and requested_by_id == user.pk and self_approval:
        return self_approval
    if decided:
        return f"you already decided on {subject}"
    return None
