"""The real URLconf plus a view that fails, for the 500 page's tests."""
from django.urls import path

from portal.urls import handler403, handler404, handler500  # noqa: F401
from portal.urls import urlpatterns as real


def boom(request):
    raise RuntimeError("the database is on fire")


urlpatterns = [path("boom/", boom), *real]
