"""/healthz (the process answers) and /readyz (its database and Redis answer)."""
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis():
    import django_rq

    django_rq.get_connection("default").ping()


@require_GET
@never_cache
def readyz(request):
    failing = {}
    for name, check in (("database", check_database), ("redis", check_redis)):
        try:
            check()
        except Exception as exc:  # any failure means not ready; name the part and why
            failing[name] = f"{exc.__class__.__name__}: {exc}"[:300]
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing,
                             "detail": "not ready: " + ", ".join(f"{k} ({v})" for k, v in failing.items())}, status=503)
    return JsonResponse({"status": "ok", "checks": {"database": "ok", "redis": "ok"}})
