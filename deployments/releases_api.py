"""API for releases (API.md): register, list, fetch."""
from ninja import Router, Status

from portal.api_auth import require_role
from portal.errors import NotFound
from portal.validation import list_limit

from .models import Release
from .releases import register_release
from .schemas import ReleaseCreate
from .serializers import ReleaseOut, release_out

router = Router(tags=["releases and deployments"])


@router.post("/releases", response={201: ReleaseOut})
def create_release(request, payload: ReleaseCreate):
    release = register_release(request.user, payload, request=request)
    return Status(201, release_out(release))


@router.get("/releases", response=list[ReleaseOut])
def list_releases(request, service: str | None = None, limit: int = 100):
    require_role(request)
    qs = Release.objects.select_related("service", "created_by")
    if service:
        qs = qs.filter(service__name=service)
    return [release_out(r) for r in qs[:list_limit(limit)]]


@router.get("/releases/{release_id}", response=ReleaseOut)
def get_release(request, release_id: int):
    require_role(request)
    release = Release.objects.select_related("service", "created_by").filter(pk=release_id).first()
    if release is None:
        raise NotFound(f"no release {release_id}")
    return release_out(release)
