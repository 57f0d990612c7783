"""Approval of environment requests: creating one from a protected template (or above its
default quota), and deleting a staging or production environment.

Who may decide is the one approval rule (``portal.accounts.policies.approver_refusal``): the approver
role for the environment, its approver groups, one decision per approver, never the requester's
own approval. The inbox lists these next to deployments.
"""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.accounts import policies as roles
from portal.accounts.policies import approver_refusal
from portal.audit.services import record
from portal.errors import Conflict, Forbidden, deny
from portal.jobs.services import enqueue_job
from portal.live import state_of
from portal.schema_types import Approval, Rejection

from .choices import EnvironmentStatus
from .models import Environment, EnvironmentApproval
from .status import set_environment_status
from .teardown import tear_down

APPROVE, REJECT = "approve", "reject"
CREATE, DELETE = EnvironmentApproval.CREATE, EnvironmentApproval.DELETE


def pending_purpose(env):
    """What of `env` waits for approval: "create", "delete" or None."""
    if env.status == EnvironmentStatus.REQUESTED:
        return CREATE
    if env.deletion_requested_at is not None and env.status not in (EnvironmentStatus.DELETING, *EnvironmentStatus.GONE):
        return DELETE
    return None


def required_approvals(env, purpose=None):
    """How many approvals the request needs: the template's number for creation; for a deletion,
    the environment's own required approvals (at least one)."""
    purpose = purpose or pending_purpose(env)
    if purpose == CREATE:
        return max(1, int((env.guardrails or {}).get("required_approvals") or 1))
    return max(1, env.required_approvals)


def requester_id(env, purpose):
    return env.owner_id if purpose == CREATE else env.deletion_requested_by_id


def refusal(user, env, decision, decisions=None):
    """Why `user` may not decide on `env`'s pending request now, or None (deployments' rule)."""
    purpose = pending_purpose(env)
    closed = None
    if purpose is None:
        closed = f"environment '{env.slug}' is {env.status} and waits for no decision"
    decisions = list(env.approvals.filter(purpose=purpose or CREATE)) if decisions is None else decisions
    what = "environment deletions" if purpose == DELETE else "environment requests"
    return approver_refusal(
        user, env, decision, what=what, subject=f"the request for environment '{env.slug}'", closed=closed,
        requested_by_id=requester_id(env, purpose),
        self_approval="environment requests need someone other than the requester to approve",
        decided=any(d.user_id == user.pk and d.purpose == (purpose or CREATE) for d in decisions))


def decide(user, env, decision, comment="", request=None):
    """Approve or reject the pending request of `env`. The last approval needed starts the
    provisioning (creation) or the teardown (deletion); a rejection closes the request."""

    purpose = pending_purpose(env)
    early = refusal(user, env, decision)
    if early:
        deny(f"environment.{decision}", user=user, request=request, target=env, environment=env, reason=early,
             error=_error_for(user, env))
    comment = (Approval if decision == APPROVE else Rejection).validated({"comment": comment})["comment"]
    late = None
    job = None
    try:
        with transaction.atomic():
            env = Environment.objects.select_for_update().get(pk=env.pk)
            late = refusal(user, env, decision)
            if late is None:
                EnvironmentApproval.objects.create(environment=env, purpose=purpose, user=user, decision=decision,
                                                   comment=comment)
                record(f"environment.{decision}", actor=user, request=request, target=env,
                       detail={"purpose": purpose, "comment": comment})
                approvals = env.approvals.filter(purpose=purpose, decision=APPROVE).count()
                if decision == REJECT and purpose == CREATE:
                    set_environment_status(env, EnvironmentStatus.REJECTED, actor=user, request=request,
                                           reason=comment)
                elif decision == REJECT:
                    _clear_deletion_request(env)
                elif approvals >= required_approvals(env, purpose) and purpose == CREATE:
                    set_environment_status(env, EnvironmentStatus.PROVISIONING, actor=user, request=request,
                                           detail={"approvals": approvals})
                    enqueue_job("environment.provision", target=env, environment=env, requested_by=env.owner)
                elif approvals >= required_approvals(env, purpose):
                    requester = env.deletion_requested_by
                    job = tear_down(env, actor=user, request=request, action="environment.delete",
                                     reason=f"deletion requested by {requester.get_username() if requester else '?'} "
                                            f"and approved")
    except IntegrityError:
        late = f"you already decided on the request for environment '{env.slug}'"
    if late:
        deny(f"environment.{decision}", user=user, request=request, target=env, environment=env, reason=late,
             error=_error_for(user, Environment.objects.get(pk=env.pk)))
    return Environment.objects.get(pk=env.pk), job


def _error_for(user, env):
    """409 when nothing waits for a decision (the state forbids it), else 403 (a rule forbids it)."""

    if pending_purpose(env) is None and roles.has_role(user, roles.APPROVER, env):
        return Conflict
    return Forbidden


def _clear_deletion_request(env):
    env.approvals.filter(purpose=DELETE).delete()  # the audit log keeps each decision
    Environment.objects.filter(pk=env.pk).update(deletion_requested_by=None, deletion_requested_at=None)


def request_deletion(user, env, request=None):
    """A protected environment's deletion waits for approval (audited); returns the environment."""
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=env.pk)
        if env.deletion_requested_at is not None:
            raise Conflict(f"the deletion of '{env.slug}' was already requested and waits for approval")
        env.deletion_requested_by, env.deletion_requested_at = user, timezone.now()
        env.save(update_fields=["deletion_requested_by", "deletion_requested_at", "updated_at"])
        record("environment.delete_request", actor=user, request=request, target=env,
               detail={"required_approvals": required_approvals(env, DELETE)})
    return env


def pending_requests(user, queryset=None):
    """Environments `user` may see whose creation or deletion waits for approval (a queryset)."""

    qs = queryset if queryset is not None else Environment.objects.all()
    qs = roles.restrict_environments(user, qs)
    return qs.filter(status=EnvironmentStatus.REQUESTED) | qs.filter(deletion_requested_at__isnull=False).exclude(
        status__in=(EnvironmentStatus.DELETING, *EnvironmentStatus.GONE))


def pending_state(user):
    """Version parts of the inbox's environment requests (portal/live.py), one aggregate query: how
    many wait, their latest change and the latest decision given on them."""
    return state_of(pending_requests(user), "updated_at", "approvals__at")


def pending_for(user, queryset=None):
    """Environment requests `user` could decide on now, oldest first (for the inbox). Two queries."""
    qs = pending_requests(user, queryset).select_related("owner", "deletion_requested_by", "cluster")
    envs = list(qs.prefetch_related("approvals").order_by("updated_at", "id"))
    items = []
    for env in envs:
        if refusal(user, env, APPROVE, decisions=list(env.approvals.all())) is None:
            purpose = pending_purpose(env)
            env.pending_purpose = purpose
            env.approvals_required = required_approvals(env, purpose)
            env.approvals_valid = sum(1 for a in env.approvals.all() if a.purpose == purpose and a.decision == APPROVE)
            items.append(env)
    return items
