"""API: approve or reject a production restore (the deployments' approval rule; see restore_approvals)."""
from ninja import Router

from environments.backups.queries import visible_restore
from environments.backups.serializers import RestoreOut, restore_out
from portal.schema_types import Approval

from .choices import APPROVE, REJECT
from .restore_approvals import decide_restore
from .schemas import RestoreRejection

router = Router(tags=["backups"])


@router.post("/restores/{restore_id}/approve", response=RestoreOut)
def approve_restore(request, restore_id: int, payload: Approval = None):
    restore = decide_restore(request.user, visible_restore(request.user, restore_id), APPROVE,
                             payload.comment if payload else "", request=request)
    return restore_out(restore)


@router.post("/restores/{restore_id}/reject", response=RestoreOut)
def reject_restore(request, restore_id: int, payload: RestoreRejection = None):
    restore = decide_restore(request.user, visible_restore(request.user, restore_id), REJECT,
                             payload.comment if payload else "", request=request)
    return restore_out(restore)
