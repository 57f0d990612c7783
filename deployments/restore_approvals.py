"""Approvals of production restores, decided by the same rule as deployments.

A restore into production waits `pending_approval` (environments.backups). Who may approve or reject
it is `policies.decision_refusal`, the deployments' own rule (approver role there, approver groups,
no self-approval where prevented, one decision each), asked about the restore. This module lives in
the deployments app because environments never import deployments.
"""
from types import SimpleNamespace

from django.db import transaction
from django.db.models import Count, F, Max, Sum
from django.utils import timezone

from environments.backups import services as backup_services
from environments.backups.choices import RestoreState
from environments.backups.models import Restore
from portal.accounts import policies as roles
from portal.audit.services import record
from portal.db_functions import JsonArrayLength
from portal.errors import deny
from portal.schema_types import Approval

from . import policies
from .choices import APPROVE, REJECT
from .schemas import RestoreRejection


def restore_decision_refusal(user, restore, decision):
    """Why `user` may not approve/reject `restore` now (the deployments' rule), or None."""
    env = restore.backup.target.environment
    subject = SimpleNamespace(environment=env, state=restore.state, requested_by_id=restore.requested_by_id,
                              break_glass=False, pk=restore.pk)
    approvals = [SimpleNamespace(user_id=a["user_id"], decision=a["decision"]) for a in restore.approvals]
    return policies.decision_refusal(user, subject, decision, approvals=approvals, noun="restore")


def decide_restore(user, restore, decision, comment="", request=None):
    """Record an approval or a rejection; enough approvals queue the restore, a rejection ends it."""
    env = restore.backup.target.environment
    reason = restore_decision_refusal(user, restore, decision)
    if reason:
        deny(f"backup.restore.{decision}", user=user, request=request, target=restore, environment=env, reason=reason)
    comment = (Approval if decision == APPROVE else RestoreRejection).validated({"comment": comment})["comment"]
    with transaction.atomic():
        restore = Restore.objects.select_for_update().select_related("backup__target__environment").get(pk=restore.pk)
        late = restore_decision_refusal(user, restore, decision)  # again, under the lock
        if late is None:
            restore = _record_decision(user, restore, decision, comment, request)
    if late:  # audited outside the transaction, which changed nothing
        deny(f"backup.restore.{decision}", user=user, request=request, target=restore, environment=env, reason=late)
    return restore


def _record_decision(user, restore, decision, comment, request):
    """Inside decide_restore's transaction, the restore row locked: store the decision and act on it."""
    env = restore.backup.target.environment
    restore.approvals = restore.approvals + [{"user": user.get_username(), "user_id": user.pk, "decision": decision,
                                              "comment": comment or "", "at": timezone.now().isoformat()}]
    restore.save(update_fields=["approvals"])
    # the decision's own event, named like deployment.approve / .reject (refusals share the name, outcome denied)
    record(f"backup.restore.{decision}", actor=user, request=request, target=restore, environment=env,
           detail={"comment": comment or "", "approvals": approvals_given(restore),
                   "required": env.required_approvals})
    approved = approvals_given(restore)
    if decision == REJECT:
        restore = backup_services.set_state(restore, RestoreState.REJECTED, actor=user, request=request)
    elif approved >= env.required_approvals:
        restore = backup_services.set_state(restore, RestoreState.QUEUED, actor=user, request=request,
                                            detail={"approvals": approved})
        backup_services.enqueue_restore(restore, user, request)
    return restore


def approvals_given(restore):
    return sum(1 for a in restore.approvals if a["decision"] == APPROVE)


def _pending_restores(user):
    return roles.restrict_environments_of(
        user, Restore.objects.filter(state=RestoreState.PENDING_APPROVAL), field="backup__target__environment_id")


def pending_restores_state(user):
    """Version parts of the inbox's restores (portal/live.py), one aggregate query: how many wait, the
    newest, and how many decisions they hold (a restore keeps its approvals on its own row)."""
    row = _pending_restores(user).order_by().aggregate(
        n=Count("pk"), newest=Max("created_at"),
        decisions=Sum(JsonArrayLength(F("approvals"))))
    return row["n"], row["newest"], row["decisions"]


def pending_restores_for(user):
    """Production restores waiting for a decision `user` may give now, oldest first, for the approvals
    inbox page and GET /api/v1/approvals. One query for the rows; `restore_decision_refusal` (the
    deployments' rule) decides each. Each row gets `approvals_required` and `approvals_valid`."""
    qs = _pending_restores(user)
    rows = []
    for restore in qs.select_related("backup__target__environment", "requested_by").order_by("created_at", "id"):
        if restore_decision_refusal(user, restore, APPROVE) is None:
            restore.approvals_required = restore.backup.target.environment.required_approvals
            restore.approvals_valid = approvals_given(restore)
            rows.append(restore)
    return rows
