"""The v1 API (API.md): one NinjaAPI; each app adds its router. Errors are JSON with `detail`."""
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from deployments.approvals_api import router as approvals_router
from deployments.catalog_api import router as catalog_router
from deployments.compliance.api import router as compliance_router
from deployments.deployments_api import router as deployments_router
from deployments.health_api import router as health_router
from deployments.monitoring.api import router as live_health_router
from deployments.releases_api import router as releases_router
from deployments.restore_approvals_api import router as restore_approvals_router
from environments.backups.api import router as backups_router
from environments.clusters_api import router as clusters_router
from environments.environments_api import router as environments_router
from environments.self_service_api import router as self_service_router
from portal.api_auth import API_AUTH
from portal.audit.api import router as audit_router
from portal.error_pages import database_unavailable, log_database_down
from portal.errors import Conflict, GantryError, audit_conflict, audit_refusal
from portal.jobs.api import router as jobs_router
from portal.openapi_errors import declare_errors
from portal.schema_types import error_messages


class GantryAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Ninja's document, with every operation's error statuses declared (portal.openapi_errors)."""

        return declare_errors(super().get_openapi_schema(*args, **kwargs))


api = GantryAPI(
    title="Gantry API",
    version="1",
    description="Environments, services, releases, deployments, approvals and the audit log. See API.md.",
    auth=API_AUTH,
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


@api.exception_handler(GantryError)
def gantry_error(request, exc):
    if exc.status == 403:
        audit_refusal(request, exc, "; ".join(exc.messages))
    elif isinstance(exc, Conflict):
        audit_conflict(request, exc)
    response = api.create_response(request, {"detail": exc.detail}, status=exc.status)
    if getattr(exc, "retry_after", None):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def validation_error(request, exc):
    return api.create_response(request, {"detail": error_messages(exc.errors)}, status=400)


@api.exception_handler(AuthenticationError)
def authentication_error(request, exc):
    return api.create_response(
        request, {"detail": "authentication required: send 'Authorization: Bearer <token>' or log in"}, status=401
    )


@api.exception_handler(Http404)
def not_found(request, exc):
    return api.create_response(request, {"detail": str(exc) or "not found"}, status=404)


@api.exception_handler(DataError)
def data_error(request, exc):
    """A value the database cannot store or compare (out of range, a NUL byte) is the caller's bad input."""
    return api.create_response(request, {"detail": "invalid input: a value is out of range or holds a character "
                                                   "that cannot be stored"}, status=400)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_down(request, exc):
    """The database not answering: 503 with Retry-After, as the pages (portal.error_pages)."""
    log_database_down(request, exc)
    return database_unavailable(request)


@api.exception_handler(UnicodeError)
def unicode_error(request, exc):
    return api.create_response(request, {"detail": "invalid input: text holds characters that cannot be encoded "
                                                   "(e.g. an unpaired surrogate)"}, status=400)


@api.exception_handler(HttpError)
def http_error(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


def _add_routers():
    api.add_router("", clusters_router)
    api.add_router("", environments_router)
    api.add_router("", self_service_router)
    api.add_router("", catalog_router)
    api.add_router("", releases_router)
    api.add_router("", deployments_router)
    api.add_router("", approvals_router)
    api.add_router("", health_router)
    api.add_router("", audit_router)
    api.add_router("", jobs_router)
    api.add_router("", compliance_router)
    api.add_router("", backups_router)
    api.add_router("", restore_approvals_router)
    api.add_router("", live_health_router)


_add_routers()
