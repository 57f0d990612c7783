"""The rules of releases, deployments and approvals. Pages, the API and jobs all ask these."""
from django.contrib.auth import get_user_model
from django.db.models import Q

from environments import policies as env_rules
from environments.models import Environment
from portal.accounts import policies as roles
from portal.accounts.models import RoleAssignment

from .choices import APPROVE, ROLLBACK
from .choices import DeploymentState as S
from .live import live_deployment, rollback_target
from .models import Deployment


def release_refusal(user):
    """Why `user` may not register releases (None when they may): the deployer role, anywhere. The
    service denies with it; the page asks it before showing the form."""
    return None if roles.can_register_releases(user) else "registering releases needs the deployer role"


def approvals_required(deployment):
    """The environment's required approvals, plus one for a break-glass override; none for a rollback
    unless the environment asks for it."""
    if deployment.kind == ROLLBACK and not deployment.environment.rollback_requires_approval:
        return 0
    required = deployment.environment.required_approvals
    return required + 1 if deployment.break_glass else required


def valid_approvals(deployment, current_hash=None, approvals=None):
    """The approvals that still count: decision approve, bound to the current image and manifests, given
    by someone who still holds the approver role there (an approver who lost it, or whose account was
    deactivated, no longer counts)."""
    current_hash = current_hash or deployment.manifest_hash
    approvals = deployment.approvals.all() if approvals is None else approvals
    return [a for a in approvals if a.decision == APPROVE and a.image == deployment.image
            and a.manifest_hash == current_hash and roles.has_role(a.user, roles.APPROVER, deployment.environment)]


def stale_approvals(deployment, current_hash=None, approvals=None):
    """Approvals given to an earlier image or manifest, with the reason they no longer count."""
    current_hash = current_hash or deployment.manifest_hash
    approvals = deployment.approvals.all() if approvals is None else approvals
    stale = []
    for approval in approvals:
        if approval.decision != APPROVE:
            continue
        if approval.image != deployment.image:
            stale.append((approval, f"the image changed from {approval.image} to {deployment.image}"))
        elif not roles.has_role(approval.user, roles.APPROVER, deployment.environment):
            stale.append((approval, f"{approval.user.get_username()} no longer holds the approver role here"))
        elif approval.manifest_hash != current_hash:
            stale.append((approval, "the rendered manifests changed after this approval"))
    return stale


def decision_refusal(user, deployment, decision, approvals=None, noun="deployment"):
    """Why `user` may not approve (or reject) `deployment` now, or None when they may (portal.accounts.policies.approver_refusal).
    `noun`: what the messages call it (a production restore is decided by this rule too)."""
    env = deployment.environment
    closed = None
    if deployment.state != S.PENDING_APPROVAL:
        word = {S.REJECTED: "was rejected", S.CANCELLED: "was cancelled", S.APPROVED: "is already approved",
                S.QUEUED: "has already been queued", S.RUNNING: "has already started"}.get(deployment.state,
                                                                                    f"is {deployment.state}")
        closed = f"{noun} #{deployment.pk} {word}; decisions are closed"
    self_approval = None
    if env.prevent_self_approval:
        self_approval = f"{env.slug} prevents self-approval: someone other than the requester must approve"
    elif deployment.break_glass:
        self_approval = "a break-glass override must be approved by someone other than the admin who asked for it"
    approvals = deployment.approvals.all() if approvals is None else approvals
    return roles.approver_refusal(user, env, decision, what=f"{noun}s", subject=f"{noun} #{deployment.pk}",
                            closed=closed, requested_by_id=deployment.requested_by_id, self_approval=self_approval,
                            decided=any(a.user_id == user.pk for a in approvals))


def may_decide(user, deployment, decision=APPROVE, approvals=None):
    return decision_refusal(user, deployment, decision, approvals) is None


def start_blocker(deployment, at=None):
    """Why an approved deployment cannot start now (closed window, freeze), or None."""
    if deployment.break_glass or deployment.kind == ROLLBACK:
        return None  # a rollback returns to an already approved state; it is not held by windows or freezes
    env = deployment.environment
    freeze = env_rules.active_freeze(env, at)
    if freeze:
        return f"{env.slug} is frozen until {freeze['until']:%Y-%m-%d %H:%M %Z}: {freeze['reason']}"
    if not env_rules.window_open(env.deployment_windows, at):
        opening = env_rules.next_window_opening(env.deployment_windows, at)
        when = f"; the next window opens {opening:%a %Y-%m-%d %H:%M %Z}" if opening else ""
        return f"the deployment window of {env.slug} is closed{when}"
    return None


def may_request(user, environment):
    """May `user` request deployments (and rollbacks) in `environment`? Pages ask this to show buttons."""
    return request_refusal(user, environment) is None


def request_refusal(user, environment):
    if not roles.has_role(user, roles.DEPLOYER, environment):
        return f"you need the deployer role for {environment.slug} to request deployments there"
    return None


def cancel_refusal(user, deployment):
    if deployment.state not in S.OPEN:
        return None  # the state machine answers that one (409)
    if deployment.requested_by_id == user.pk or roles.has_role(user, roles.ADMIN, deployment.environment):
        return None
    return "only the requester or an admin can cancel a deployment"


def may_cancel(user, deployment):
    return deployment.state in S.OPEN and cancel_refusal(user, deployment) is None


def _environments_closed_by_groups(user):
    """Ids of environments whose approver groups the user is in none of (one small query)."""
    rows = list(Environment.objects.exclude(approver_groups=[]).values_list("pk", "approver_groups"))
    groups = roles.group_names(user) if rows else frozenset()  # the user's groups only when they matter
    return [pk for pk, names in rows if not groups & set(names)]


def decidable(user, queryset):
    """The deployments of `queryset` that `user` may decide on now, narrowed in SQL by the same rules
    as decision_refusal: pending approval, the approver role for their environment, in one of its
    approver groups, not their own request where self-approval is prevented or break-glass, no
    decision of theirs yet. Lists and counts paginate this in SQL; decision_refusal stays the word
    on each row shown (it also words the reason)."""
    qs = queryset.filter(state=S.PENDING_APPROVAL).exclude(approvals__user=user)
    env_ids = roles.environment_ids_with_role(user, roles.APPROVER)
    if env_ids is not None:
        qs = qs.filter(environment_id__in=env_ids)
    closed = _environments_closed_by_groups(user)
    if closed:
        qs = qs.exclude(environment_id__in=closed)
    return qs.exclude(requested_by=user, environment__prevent_self_approval=True).exclude(requested_by=user,
                                                                                          break_glass=True)


def count_decidable(user, queryset):
    """How many deployments wait for this user's decision (the navigation badge): one COUNT."""
    return decidable(user, queryset).count()


def approvers(environment):
    """Who may approve deployments in `environment`: active users with the approver or admin role
    there or globally, and, when the environment names approver groups, only members of one of them.
    Notifications ask this; decision_refusal applies the same rule to one user."""
    holders = RoleAssignment.objects.filter(Q(environment__isnull=True) | Q(environment=environment),
                                            role__in=[roles.APPROVER, roles.ADMIN]).values("user_id")
    users = get_user_model().objects.filter(pk__in=holders, is_active=True)
    if environment.approver_groups:
        users = users.filter(groups__name__in=environment.approver_groups).distinct()
    return users


def rollback_refusal(user, environment):
    """Why `user` may not roll back in `environment` (the deployer role there), or None."""
    if not roles.has_role(user, roles.DEPLOYER, environment):
        return f"you need the deployer role for {environment.slug} to roll back there"
    return None


def services_in_flight(environment_id, service_id=None):
    """Ids of the services with a deployment or rollback approved, queued or running in the environment."""
    qs = Deployment.objects.filter(environment_id=environment_id, state__in=[S.APPROVED, S.QUEUED, S.RUNNING])
    if service_id is not None:
        qs = qs.filter(service_id=service_id)
    return set(qs.values_list("service_id", flat=True).distinct())


def rollback_plan(deployment):
    """(what a rollback of `deployment` returns to, None) when it can be rolled back now, else (None, why not).

    Only the deployment that runs now can be rolled back, not while another deployment or rollback
    of the service there is approved or under way, and only to an earlier successful release.
    """
    env, service = deployment.environment, deployment.service
    live = live_deployment(deployment.service_id, deployment.environment_id)
    if deployment.state != S.SUCCEEDED or live is None or live.pk != deployment.pk:
        return None, (f"deployment #{deployment.pk} is not what runs now in {env.slug}"
                      + (f" (#{live.pk} is)" if live else "") + "; roll back the live deployment")
    if deployment.service_id in services_in_flight(deployment.environment_id, deployment.service_id):
        return None, (f"a deployment or rollback of {service.name} in {env.slug} is already approved or under way; "
                      "wait for it, or cancel it, before rolling back")
    target = rollback_target(deployment)
    if target is None:
        return None, f"there is no earlier successful release of {service.name} in {env.slug} to roll back to"
    return target, None


def rollback_rules(environment):
    """What the rules allow a rollback in `environment`, in the words of its confirmation dialog.

    Asked of the same functions that decide (approvals_required, start_blocker), so the sentence
    follows the environment's settings and an active freeze.
    """

    probe = Deployment(kind=ROLLBACK, environment=environment)
    needed = approvals_required(probe)
    parts = ["skip approval" if needed == 0 else f"need {needed} approval{'s' if needed != 1 else ''}"]
    if start_blocker(probe) is None:
        if env_rules.active_freeze(environment):
            parts.append("are allowed during the freeze")
        elif environment.deployment_windows:
            parts.append("may start outside the deployment windows")
    return "Rollbacks here " + " and ".join(parts) + "."
