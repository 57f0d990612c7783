"""What people do on the page of one deployment: approve, reject, cancel, roll back. They call
`deployments.actions`; htmx swaps only 2xx answers, so an htmx decision that the service refuses is
answered with the decision panel showing the refusal (the service has already audited it); a normal
POST gets the 403 page, or the page again with the errors."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.errors import Conflict, Forbidden, InvalidInput, audit_conflict
from portal.pages import button_action, needs_role, safe_next

from . import actions
from .choices import APPROVE, REJECT
from .deployment_panels import detail_context, panel_response, refresh_page, visible_deployment


def _decide(request, deployment, decision, action, done_message):
    """Run a decision; answer htmx with the panel, a normal POST with a redirect (or the page with errors)."""
    values = {"comment": request.POST.get("comment", ""), "checklist": request.POST.getlist("checklist"),
              "decision": decision}
    errors, status = [], 200
    try:
        action()
    except actions.ManifestsChanged as exc:
        messages.error(request, "; ".join(exc.messages))
        return refresh_page() if request.htmx else redirect("deployment_detail", deployment_id=deployment.pk)
    except InvalidInput as exc:
        errors, status = exc.messages, 400
    except Conflict as exc:
        audit_conflict(request, exc)
        errors, status = exc.messages, 409
    except Forbidden as exc:
        if not request.htmx:
            raise  # the 403 page (refusals_as_pages); the service audited the refusal
        errors, status = exc.messages, 403
    if status in (403, 409):
        values["refused"] = True  # a refusal reads as one, not as a form to fix
    deployment = visible_deployment(request, deployment.pk)
    if request.htmx:
        return panel_response(request, deployment, errors, values if errors else None, include_job=not errors)
    if status == 409:
        messages.error(request, "; ".join(errors))
    elif errors:
        return render(request, "deployments/detail.html",
                      detail_context(request, deployment, errors, values), status=status)
    else:
        messages.success(request, done_message.format(d=deployment, state=deployment.get_state_display()))
    return redirect("deployment_detail", deployment_id=deployment.pk)


@login_required
@needs_role
@require_POST
def deployment_approve(request, deployment_id):
    deployment = visible_deployment(request, deployment_id)

    def approve():
        actions.approve_deployment(request.user, deployment.pk, comment=request.POST.get("comment", ""),
                                   checklist=request.POST.getlist("checklist"),
                                   seen_manifest_hash=request.POST.get("seen_manifest_hash") or None,
                                   request=request)

    return _decide(request, deployment, APPROVE, approve, "You approved deployment #{d.pk}; it is now {state}.")


@login_required
@needs_role
@require_POST
def deployment_reject(request, deployment_id):
    deployment = visible_deployment(request, deployment_id)

    def reject():
        actions.reject_deployment(request.user, deployment.pk, comment=request.POST.get("comment", ""),
                                  request=request)

    return _decide(request, deployment, REJECT, reject, "You rejected deployment #{d.pk}.")


@login_required
@needs_role
@require_POST
def deployment_cancel(request, deployment_id):
    deployment = visible_deployment(request, deployment_id)
    return button_action(
        request, lambda: actions.cancel_deployment(request.user, deployment.pk, reason=request.POST.get("reason", ""),
                                                   request=request),
        done=f"Deployment #{deployment.pk} cancelled.", back=reverse("deployment_detail", args=[deployment.pk]),
        refusals=(Conflict, InvalidInput))


@login_required
@needs_role
@require_POST
def deployment_rollback(request, deployment_id):
    deployment = visible_deployment(request, deployment_id)
    return button_action(
        request, lambda: actions.request_rollback(request.user, deployment.pk, reason=request.POST.get("reason", ""),
                                                  request=request),
        done=lambda rollback: f"Rollback of {deployment.service.name} in {deployment.environment.slug} to "
                              f"{rollback.release.version} requested (deployment #{rollback.pk}); it is now "
                              f"{rollback.get_state_display()}.",
        back=safe_next(request, reverse("deployment_detail", args=[deployment.pk])),
        then=lambda rollback: reverse("deployment_detail", args=[rollback.pk]), refusals=(Conflict, InvalidInput))
