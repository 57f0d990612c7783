"""The idle colour of blue-green services: scaled to 0 once the environment's keep time is over."""
import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from environments.models import Environment
from portal import kube
from portal.audit.services import record

from .bluegreen import COLORS, SCALED_FROM_ANNOTATION, manifest_names, other_color
from .choices import BLUE_GREEN, ROLLBACK, DeploymentState as S
from .live import live_deployment
from .models import Deployment

logger = logging.getLogger("gantry.deployments")


def scale_down_idle_colors(now=None):
    """Periodic: scale the idle colour of blue-green services to 0 once its keep time is over.

    The idle colour is what a fast rollback flips back to, so it keeps running for the
    environment's ``blue_green_keep_minutes`` after the live deployment finished, and is left
    alone while any deployment or rollback of the service there is under way. The check and the
    scale-down happen under the environment's row lock, the lock every deployment takes to
    start, so no deployment can start in between. Returns how many Deployments were scaled down.
    """
    pairs = (Deployment.objects.filter(service__strategy=BLUE_GREEN, state=S.SUCCEEDED)
             .order_by().values_list("service_id", "environment_id").distinct())
    now = now or timezone.now()
    return sum(_scale_down_idle_color(service_id, environment_id, now) for service_id, environment_id in pairs)


def _scale_down_idle_color(service_id, environment_id, now):
    with transaction.atomic():
        env = Environment.objects.select_for_update(of=("self",)).select_related("cluster").get(pk=environment_id)
        live = live_deployment(service_id, environment_id)
        if live is None or live.color not in COLORS or live.finished_at is None or env.cluster_id is None:
            return 0
        if live.finished_at > now - timedelta(minutes=env.blue_green_keep_minutes):
            return 0
        others = Deployment.objects.filter(service_id=service_id, environment_id=environment_id)
        if others.filter(state__in=[S.QUEUED, S.RUNNING]).exists() or others.filter(
                kind=ROLLBACK, state__in=[S.PENDING_APPROVAL, S.APPROVED]).exists():
            return 0
        names = manifest_names(live.rendered_manifest)
        name = f"{names[0] if names else live.service.name}-{other_color(live.color)}"
        try:
            idle = kube.get(env.cluster, "apps/v1", "Deployment", env.namespace, name)
            replicas = ((idle or {}).get("spec") or {}).get("replicas", 0)
            if not replicas:
                return 0
            kube.patch_merge(env.cluster, "apps/v1", "Deployment", env.namespace, name,
                             {"metadata": {"annotations": {SCALED_FROM_ANNOTATION: str(replicas)}}, "spec": {"replicas": 0}})
        except kube.KubeError as exc:
            logger.warning("could not scale down %s in %s: %s", name, env.slug, exc)
            return 0
        record("deployment.idle_color_scaled_down", actor_name="gantry-scheduler", target=live, environment=env,
               changes={"replicas": [replicas, 0]}, detail={"deployment": name, "keep_minutes": env.blue_green_keep_minutes})
    return 1
