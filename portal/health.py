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
    from portal.jobs import queue

    queue.ping()


@require_GET
@never_cache
def readyz(request):
    """503 naming each failing part. `?need=database` (the web pods' readiness probe) answers 200
    while only Redis is down, still naming it: pages and the API work without Redis (jobs wait
    `queued` and are sent when it is back), so the web must stay in its Service."""
    failing = {}
    for name, check in (("database", check_database), ("redis", check_redis)):
        try:
            check()
        except Exception as exc:  # any failure means not ready; name the part and why
            failing[name] = f"{exc.__class__.__name__}: {exc}"[:300]
    checks = {name: "ok" if name not in failing else "down" for name in ("database", "redis")}
    needed = [part for part in request.GET.get("need", "").split(",") if part in checks] or list(checks)
    if failing:
        detail = "not ready: " + ", ".join(f"{k} ({v})" for k, v in failing.items())
        status = 503 if any(part in failing for part in needed) else 200
        return JsonResponse({"status": "unavailable" if status == 503 else "degraded", "failing": failing,
                             "checks": checks, "detail": detail}, status=status)
    return JsonResponse({"status": "ok", "checks": checks})
