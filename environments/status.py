"""An environment's status: the one writer (`set_environment_status`), which moves it along its state
table (environments.choices.ENVIRONMENT_TRANSITIONS) and audits the move in the same transaction."""
from django.db import transaction
from django.utils import timezone

from portal.audit.services import record
from portal.errors import Conflict

from .choices import ENVIRONMENT_TRANSITIONS, EnvironmentStatus
from .models import Environment


class TransitionError(Conflict):
    pass


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
