"""Live health of what runs in an environment, read from the cluster through portal.kube."""
import yaml
from django.utils import timezone

from environments.models import Environment
from portal import kube

from .choices import BLUE_GREEN
from .live import live_and_rollback_targets
from .models import ServiceHealth


def _deployment_names(deployment):
    names = []
    try:
        for doc in yaml.safe_load_all(deployment.rendered_manifest or ""):
            if isinstance(doc, dict) and doc.get("kind") == "Deployment":
                names.append(doc.get("metadata", {}).get("name"))
    except yaml.YAMLError:
        pass
    return [n for n in names if n] or [deployment.service.name]


def classify(status):
    """healthy / progressing / degraded / down from a kube.deployment_status summary."""
    desired, ready = status.get("desired") or 0, status.get("ready") or 0
    if status.get("failure"):
        return ("degraded" if ready else "down"), status["failure"]
    if desired == 0:
        return "down", "scaled to zero"
    if status.get("done") and ready >= desired:
        return "healthy", ""
    if ready == 0:
        return "progressing" if status.get("observed_generation", 0) < status.get("generation", 0) else "down", \
            f"0 of {desired} replicas ready"
    return ("progressing" if not status.get("done") else "degraded"), f"{ready} of {desired} replicas ready"


def check_service(environment, deployment):
    """Observe one service: (status, ready, desired, live colour, detail)."""
    cluster = environment.cluster
    color = ""
    names = _deployment_names(deployment)
    if deployment.service.strategy == BLUE_GREEN:
        service_obj = kube.get(cluster, "v1", "Service", environment.namespace, deployment.service.name)
        color = ((service_obj or {}).get("spec", {}).get("selector") or {}).get("color", "")
        if not color:
            return "down", 0, 0, "", f"Service {deployment.service.name} selects no colour"
        names = [f"{name}-{color}" for name in names]
    ready_total = desired_total = 0
    worst, details = "healthy", []
    order = ["healthy", "progressing", "degraded", "down"]
    for name in names:
        if kube.get(cluster, "apps/v1", "Deployment", environment.namespace, name) is None:
            status, ready, desired, detail = "down", 0, 0, f"Deployment {name} is missing"
        else:
            summary = kube.deployment_status(cluster, environment.namespace, name)
            status, detail = classify(summary)
            ready, desired = summary.get("ready") or 0, summary.get("desired") or 0
        ready_total += ready
        desired_total += desired
        if order.index(status) > order.index(worst):
            worst = status
        if detail:
            details.append(detail)
    return worst, ready_total, desired_total, color, "; ".join(details)[:500]


def poll_environment(environment):
    """Refresh the ServiceHealth rows of every service that has a live deployment here."""
    if environment.cluster_id is None:
        return []
    live = {service_id: pair[0] for service_id, pair in live_and_rollback_targets(environment.pk, with_manifests=True).items()}
    rows = []
    now = timezone.now()
    for deployment in live.values():
        try:
            status, ready, desired, color, detail = check_service(environment, deployment)
        except kube.KubeError as exc:
            status, ready, desired, color, detail = "unknown", 0, 0, "", str(exc)[:500]
        row, _ = ServiceHealth.objects.update_or_create(
            environment=environment, service=deployment.service,
            defaults={"status": status, "ready_replicas": ready, "desired_replicas": desired, "live_color": color,
                      "detail": detail, "checked_at": now})
        rows.append(row)
    ServiceHealth.objects.filter(environment=environment).exclude(service_id__in=live).delete()
    return rows


def poll_all():
    """Periodic (queue `health`): refresh every ready environment on a cluster."""
    count = 0
    for environment in Environment.objects.select_related("cluster").filter(status="ready", cluster__isnull=False):
        count += len(poll_environment(environment))
    return count
