"""Automatic rollback after a failed verification, through the same path as a person's rollback.

It cannot loop: it happens at most once per deployment (AutoRollback is unique per deployment and
written under the environment's row lock, so two workers never both roll back); it only returns to
the last release that passed verification in that environment and was not itself rolled back;
when there is none, Gantry alerts and leaves traffic alone. A person's rollback (requested before)
wins: the automatic one then does nothing.
"""
from __future__ import annotations

from django.db import transaction

from deployments import actions, state
from deployments.choices import DeploymentState as S
from deployments.live import live_deployment
from deployments.models import Deployment
from deployments.notifications import notify
from portal.audit.services import record

from .models import AutoRollback


def verified_target(deployment):
    """The last deployment before this one, of another release, that passed verification here and
    still stands (never one that was rolled back)."""
    return (Deployment.objects.select_related("release")
            .filter(service_id=deployment.service_id, environment_id=deployment.environment_id, state=S.SUCCEEDED,
                    finished_at__lt=deployment.finished_at, verification__state="passed")
            .exclude(release_id=deployment.release_id)
            .exclude(release_id__in=Deployment.objects.filter(service_id=deployment.service_id, environment_id=deployment.environment_id,
                                                              state=S.ROLLED_BACK).values("release_id"))
            .order_by("-finished_at", "-id").first())


def auto_rollback(deployment_id, reason, rule=None):
    """Roll back a deployment whose verification failed. Returns the AutoRollback row (new or existing).

    `rule` (the check that failed, from monitoring.verification) goes into the audit events, so the
    evidence pack can say which rule triggered the rollback."""
    triggered = {"rule": rule} if rule else {}
    environment_id = Deployment.objects.values_list("environment_id", flat=True).get(pk=deployment_id)
    with transaction.atomic():
        environment = state.lock_environment(environment_id)
        existing = AutoRollback.objects.filter(deployment_id=deployment_id).first()
        if existing is not None:
            return existing  # once per deployment, whoever asked first
        deployment = state.locked_deployment(deployment_id)
        live = live_deployment(deployment.service_id, environment_id)
        person = deployment.rollbacks.exclude(state__in=[S.FAILED, S.CANCELLED, S.REJECTED]).first()
        busy = (Deployment.objects.filter(service_id=deployment.service_id, environment_id=environment_id,
                                          state__in=[S.APPROVED, S.QUEUED, S.RUNNING]).exclude(rollback_of=deployment).first())
        if person is not None or live is None or live.pk != deployment.pk or busy is not None:
            why = (f"a rollback (#{person.pk}) was already requested" if person is not None
                   else f"deployment #{busy.pk} is already under way" if busy is not None
                   else "it no longer runs")
            row = AutoRollback.objects.create(deployment=deployment, reason=reason, outcome="superseded")
            record("deployment.auto_rollback_skipped", actor_name="gantry", target=deployment, environment=environment,
                   detail={"reason": reason[:500], "why": why} | triggered)
            return row
        target = verified_target(deployment)
        if target is None:
            row = AutoRollback.objects.create(deployment=deployment, reason=reason, outcome="no_target")
            record("deployment.auto_rollback_refused", actor_name="gantry", target=deployment, environment=environment,
                   outcome="failure", detail={"reason": reason[:500], "why": "no earlier release passed verification here; "
                                                                             "traffic left alone, a person must decide"} | triggered)

            notify(deployment, "rollback_impossible")
            return row
        rollback = actions.create_rollback(deployment, target, reason=reason[:500], detail={"auto": True} | triggered)
        row = AutoRollback.objects.create(deployment=deployment, rollback=rollback, reason=reason, outcome="started")
        return row
