"""API for clusters (API.md): list, register, fetch, change, remove, check."""
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from portal.accounts import policies
from portal.errors import Forbidden
from portal.schema_types import Out

from . import clusters
from .models import Cluster
from .schemas import ClusterChange, ClusterCreate
from .serializers import ClusterOut, cluster_out

router = Router(tags=["clusters and environments"])


class JobStartedOut(Out):
    job: str
    state: str


def _require_global_read(request):
    if not policies.can_view_everything(request.user):
        raise Forbidden("listing clusters needs a global role (viewer or admin)")


@router.get("/clusters", response=list[ClusterOut])
def list_clusters(request):
    _require_global_read(request)
    return [cluster_out(c) for c in Cluster.objects.all()]


@router.post("/clusters", response={201: ClusterOut})
def create_cluster(request, payload: ClusterCreate):
    cluster = clusters.create_cluster(request.user, payload, request=request)
    return Status(201, cluster_out(cluster))


@router.get("/clusters/{name}", response=ClusterOut)
def get_cluster(request, name: str):
    _require_global_read(request)
    return cluster_out(get_object_or_404(Cluster, name=name))


@router.patch("/clusters/{name}", response=ClusterOut)
def update_cluster(request, name: str, payload: ClusterChange):
    cluster = get_object_or_404(Cluster, name=name)
    return cluster_out(clusters.update_cluster(request.user, cluster, payload, request=request))


@router.delete("/clusters/{name}", response={204: None})
def delete_cluster(request, name: str):
    clusters.delete_cluster(request.user, get_object_or_404(Cluster, name=name), request=request)
    return Status(204, None)


@router.post("/clusters/{name}/check", response={202: JobStartedOut})
def check_cluster(request, name: str):
    job = clusters.check_cluster(request.user, get_object_or_404(Cluster, name=name), request=request)
    return Status(202, {"job": str(job.pk), "state": job.state})
