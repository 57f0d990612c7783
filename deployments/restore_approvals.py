"""Approvals of production restores, decided by the same rule as deployments.

A restore into production waits `pending_approval` (environments.backups). Who may approve or reject
it is `policies.decision_refusal`, the deployments' own rule (approver role there, approver groups,
no self-approval where prevented, one decision each), asked about the restore. This module lives in
the deployments app because environments never import deployments.
"""
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone

from environments.backups import services as backup_services
from environments.backups.choices import RestoreState
from environments.backups.models import Restore
from portal.audit.services import record
from portal.errors import InvalidInput, deny

from . import policies
from .choices import APPROVE, REJECT


def restore_decision_refusal(user, restore, decision):
    """Why `user` may not approve/reject `restore` now (the deployments' rule), or None."""
    env = restore.backup.target.environment
    subject = SimpleNamespace(environment=env, state=restore.state, requested_by_id=restore.requested_by_id,
                              break_glass=False, pk=restore.pk)
    approvals = [SimpleNamespace(user_id=a["user_id"], decision=a["decision"]) for a in restore.approvals]
    reason = policies.decision_refusal(user, subject, decision, approvals=approvals)
    if reason:
        reason = reason.replace(f"deployment #{restore.pk}", f"restore #{restore.pk}").replace(
            "deployments there", "restores there")
    return reason


def decide_restore(user, restore, decision, comment="", request=None):
    """Record an approval or a rejection; enough approvals queue the restore, a rejection ends it."""
    env = restore.backup.target.environment
    if decision == REJECT and not (comment or "").strip():
        raise InvalidInput("comment: say why the restore is rejected")
    reason = restore_decision_refusal(user, restore, decision)
    if reason:
        deny(f"backup.restore.{decision}", user=user, request=request, target=restore, environment=env, reason=reason)
    with transaction.atomic():
        restore = Restore.objects.select_for_update().select_related("backup__target__environment").get(pk=restore.pk)
        reason = restore_decision_refusal(user, restore, decision)  # again, under the lock
        if reason:
            raise InvalidInput(reason)
        restore.approvals = restore.approvals + [{"user": user.get_username(), "user_id": user.pk, "decision": decision,
                                                  "comment": comment or "", "at": timezone.now().isoformat()}]
        restore.save(update_fields=["approvals"])
        record(f"backup.restore.{'approved' if decision == APPROVE else 'rejected'}", actor=user, request=request,
               target=restore, environment=env, detail={"comment": comment or ""})
        approved = sum(1 for a in restore.approvals if a["decision"] == APPROVE)
        if decision == REJECT:
            restore = backup_services.set_state(restore, RestoreState.REJECTED, actor=user, request=request)
        elif approved >= env.required_approvals:
            restore = backup_services.set_state(restore, RestoreState.QUEUED, actor=user, request=request,
                                                detail={"approvals": approved})
            backup_services.enqueue_restore(restore, user, request)
    return restore
