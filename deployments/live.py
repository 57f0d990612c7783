"""What runs where: the live deployment of a service in an environment, and what a rollback returns to."""
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from .choices import DeploymentState as S
from .models import Deployment


def live_deployment(service_id, environment_id):
    """The deployment whose release runs now: the latest that succeeded."""
    return (Deployment.objects.filter(service_id=service_id, environment_id=environment_id, state=S.SUCCEEDED)
            .order_by("-finished_at", "-id").first())


def live_deployments(environment_ids):
    """The live deployment of every service in these environments (live_deployment's rule), in one
    query; with the service, without manifests, notes or people (what the health probe needs)."""
    return list(Deployment.objects.select_related("service").only(
        "id", "environment_id", "service_id", "finished_at", "color", "service__name", "service__strategy",
        "service__health_path").filter(environment_id__in=list(environment_ids), state=S.SUCCEEDED)
        .annotate(rank=Window(RowNumber(), partition_by=[F("environment_id"), F("service_id")],
                              order_by=[F("finished_at").desc(), F("id").desc()]))
        .filter(rank=1).order_by("environment_id", "service_id"))


def is_older_release(candidate, current):
    """A rollback only goes back: to a release registered before the one running now."""
    return (candidate.created_at, candidate.pk) < (current.created_at, current.pk)


def older_releases(current):
    """is_older_release as a filter on deployments: their release was registered before `current`."""
    return Q(release__created_at__lt=current.created_at) | Q(release__created_at=current.created_at,
                                                             release_id__lt=current.pk)


def rollback_target(deployment):
    """The last successful deployment before `deployment` of an OLDER release (what a rollback returns
    to): never forward to a newer release, e.g. the one just rolled back (is_older_release)."""
    return (Deployment.objects.select_related("release")
            .filter(service_id=deployment.service_id, environment_id=deployment.environment_id,
                    state__in=[S.SUCCEEDED, S.ROLLED_BACK], finished_at__lt=deployment.finished_at)
            .filter(older_releases(deployment.release)).order_by("-finished_at", "-id").first())


def live_and_rollback_targets(environment_id, depth=20, with_manifests=False):
    """{service_id: (live deployment, rollback target or None)} for a whole environment in one query.

    The same rules as live_deployment and rollback_target, over each service's `depth` most recent
    successful deployments (a rollback further back than that is not offered here).
    """

    deferred = ("release__notes", "service__manifest") + (() if with_manifests else ("rendered_manifest",))
    recent = (Deployment.objects.select_related("release", "service", "requested_by")
              .defer(*deferred)
              .filter(environment_id=environment_id, state__in=[S.SUCCEEDED, S.ROLLED_BACK])
              .annotate(rank=Window(RowNumber(), partition_by=[F("service_id")],
                                    order_by=[F("finished_at").desc(), F("id").desc()]))
              .filter(rank__lte=depth).order_by("service_id", "rank"))
    history = {}
    for deployment in recent:
        history.setdefault(deployment.service_id, []).append(deployment)
    result = {}
    for service_id, rows in history.items():
        live = next((d for d in rows if d.state == S.SUCCEEDED), None)
        if live is None:
            continue
        target = next((d for d in rows if d.finished_at < live.finished_at
                       and is_older_release(d.release, live.release)), None)
        result[service_id] = (live, target)
    return result
