"""Creating and changing a row with its audit event in the same transaction: the shape every catalog-like
service shares (a service, a cluster, an environment template, a backup target, ...). The service decides
who may and what is valid; these write and record."""
from django.db import IntegrityError, transaction

from portal.errors import Conflict

from .services import diff, record

REPLACED = ["***", "*** (replaced)"]


def create_audited(obj, action, *, snapshot, actor, request=None, taken="", **where):
    """Save the new `obj` and record `action` with all its fields (`snapshot(obj)`) as changes.
    `taken`: the 409 message when a unique field was taken at the same moment. `where`: more of the
    event's context (`environment=`)."""
    try:
        with transaction.atomic():
            obj.save()
            record(action, actor=actor, request=request, target=obj, changes=diff({}, snapshot(obj)), **where)
    except IntegrityError:
        if not taken:
            raise
        raise Conflict(taken) from None
    return obj


def change_audited(obj, values, action, *, snapshot, actor, request=None, replaced=(), **where):
    """Change `obj`'s row (locked for the change), save it and record `action` with what changed
    (nothing is recorded when nothing changed). `values`: {field: value} to set, or a function that
    changes the row it is given. `action` may be a function of the changes. `replaced`: secrets the
    change replaces, recorded as such (their values never are). `where`: more of the event's context
    (`environment=`, or another `target=` than the row). Returns the row."""
    with transaction.atomic():
        obj = type(obj).objects.select_for_update().get(pk=obj.pk)
        before = snapshot(obj)
        if callable(values):
            values(obj)
        else:
            for field, value in values.items():
                setattr(obj, field, value)
        obj.save()
        changes = diff(before, snapshot(obj)) | {name: REPLACED for name in replaced}
        if changes:
            record(action(changes) if callable(action) else action, actor=actor, request=request,
                   changes=changes, **({"target": obj} | where))
    return obj


def delete_audited(obj, action, *, snapshot, actor, request=None, **where):
    """Record `action` with all of `obj`'s fields (`snapshot(obj)`) as what went, then delete the row, in
    one transaction. `where`: more of the event's context (`environment=`, `detail=`)."""
    with transaction.atomic():
        record(action, actor=actor, request=request, target=obj, changes=diff(snapshot(obj), {}), **where)
        obj.delete()
