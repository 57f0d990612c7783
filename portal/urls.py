from django.urls import include, path

from portal import health
from portal.api import api

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
    path("api/v1/", api.urls),
    path("", include("portal.web_urls")),
]
