from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from portal import health
from portal.api import api
from portal.metrics import metrics_view


@csrf_exempt  # it changes nothing; without this a POST got Django's HTML CSRF page instead of this JSON
def api_not_found(request, rest):
    """Unknown paths under /api/v1/ answer JSON like the rest of the API, never an HTML page."""
    return JsonResponse({"detail": f"no API endpoint /api/v1/{rest}; see /api/v1/openapi.json"}, status=404)


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    path("api/v1/", api.urls),
    path("api/v1/<path:rest>", api_not_found),
    path("", include("portal.web_urls")),
]

handler404 = "portal.error_pages.not_found"
handler403 = "portal.error_pages.forbidden"
handler500 = "portal.error_pages.server_error"
