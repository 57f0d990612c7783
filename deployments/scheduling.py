"""Periodic work on deployments: starting those whose window opened, failing abandoned ones."""
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .choices import DeploymentState as S
from .models import Deployment
from .state import advance, lock_environment, locked_deployment, start_next_queued
from .worker_callbacks import finish_deployment


def fail_abandoned_deployments(minutes=30):
    """Periodic: a deployment whose deploy job failed (its worker died) and was not retried within
    `minutes` fails, so the deployments queued behind it can go on."""
    cutoff = timezone.now() - timedelta(minutes=minutes)
    stuck = Deployment.objects.filter(state=S.RUNNING, job__state="failed", job__finished_at__lt=cutoff)
    count = 0
    for pk, error in stuck.values_list("pk", "job__error"):
        finish_deployment(pk, False, error=f"the deploy job failed and was not retried within {minutes} minutes: {error}")
        count += 1
    return count


def start_due_deployments():
    """Periodic: start approved deployments whose window has opened or whose freeze has ended, and
    give a job to queued deployments left without one (a crash between two steps, a failed enqueue)."""
    orphans = (Deployment.objects.filter(state=S.QUEUED).filter(Q(job__isnull=True) | Q(job__state="failed"))
               .values_list("service_id", "environment_id").distinct())
    for service_id, environment_id in orphans:
        start_next_queued(service_id, environment_id)
    started = 0
    for pk, env_id in Deployment.objects.filter(state=S.APPROVED).values_list("pk", "environment_id"):
        with transaction.atomic():
            lock_environment(env_id)
            deployment = locked_deployment(pk)
            if deployment.state == S.APPROVED:
                advance(deployment, actor_name="gantry-scheduler")
                started += deployment.state == S.QUEUED
    return started
