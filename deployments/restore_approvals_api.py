"""API: approve or reject a production restore (the deployments' approval rule; see restore_approvals)."""
from ninja import Router

from environments.backups.models import Restore
from environments.backups.serializers import RestoreOut, restore_out
from portal.accounts import policies as roles
from portal.errors import NotFound
from portal.schema_types import Approval

from .choices import APPROVE, REJECT
from .restore_approvals import decide_restore
from .schemas import RestoreRejection

router = Router(tags=["backups"])


def _restore(request, restore_id):
    restore = Restore.objects.select_related("backup__target__environment", "requested_by").filter(pk=restore_id).first()
    if restore is None or not roles.can_view_environment(request.user, restore.backup.target.environment) \
            or not roles.has_any_role(request.user):
        raise NotFound(f"no restore #{restore_id}")
    return restore


@router.post("/restores/{restore_id}/approve", response=RestoreOut)
def approve_restore(request, restore_id: int, payload: Approval = None):
    restore = decide_restore(request.user, _restore(request, restore_id), APPROVE,
                             payload.comment if payload else "", request=request)
    return restore_out(restore)


@router.post("/restores/{restore_id}/reject", response=RestoreOut)
def reject_restore(request, restore_id: int, payload: RestoreRejection = None):
    restore = decide_restore(request.user, _restore(request, restore_id), REJECT,
                             payload.comment if payload else "", request=request)
    return restore_out(restore)
