"""Gantry's own Prometheus figures, computed at scrape time (served with django-prometheus at /metrics)."""
from prometheus_client.core import GaugeMetricFamily, REGISTRY


class GantryCollector:
    def describe(self):
        # Named up front so registering does not run a query at start-up.
        return [GaugeMetricFamily("gantry_jobs", "Jobs by queue and state", labels=["queue", "state"]),
                GaugeMetricFamily("gantry_environments", "Environments by tier and status", labels=["tier", "status"])]

    def collect(self):
        from django.db.models import Count

        from environments.models import Environment
        from portal.jobs.models import Job

        jobs = GaugeMetricFamily("gantry_jobs", "Jobs by queue and state", labels=["queue", "state"])
        try:
            for queue, state, count in Job.objects.values_list("queue", "state").annotate(n=Count("pk")).order_by():
                jobs.add_metric([queue, state], count)
            envs = GaugeMetricFamily("gantry_environments", "Environments by tier and status", labels=["tier", "status"])
            for tier, status, count in Environment.objects.values_list("tier", "status").annotate(n=Count("pk")).order_by():
                envs.add_metric([tier, status], count)
        except Exception:  # the database may be down; /readyz reports that, /metrics still answers
            return
        yield jobs
        yield envs


_registered = False


def register():
    global _registered
    if not _registered:
        REGISTRY.register(GantryCollector())
        _registered = True


# --- who may scrape -------------------------------------------------------------------------


def scrape_refusal(request):
    """None when `request` may read /metrics, else (status, reason).

    Allowed: a client address in GANTRY_METRICS_ALLOWED_IPS (addresses or networks), the bearer
    token GANTRY_METRICS_TOKEN, or the API token of a user with a global role (viewer or admin).
    """
    import hmac
    import ipaddress

    from django.conf import settings

    from portal.audit.services import client_ip

    address = client_ip(request)
    for allowed in settings.GANTRY_METRICS_ALLOWED_IPS:
        try:
            if address and ipaddress.ip_address(address) in ipaddress.ip_network(allowed, strict=False):
                return None
        except ValueError:
            continue
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("bearer "):
        return 401, "metrics need 'Authorization: Bearer <token>' or an allow-listed address"
    token = header[7:].strip()
    if settings.GANTRY_METRICS_TOKEN and hmac.compare_digest(token.encode(), settings.GANTRY_METRICS_TOKEN.encode()):
        return None
    from portal.accounts import policies
    from portal.accounts.models import ApiToken, hash_token

    found = (ApiToken.objects.select_related("user")
             .filter(digest=hash_token(token), revoked_at__isnull=True, user__is_active=True).first())
    if found is None:
        return 401, "unknown or revoked token"
    if not policies.can_view_everything(found.user):
        return 403, "metrics need a token of a user with a global role (viewer or admin)"
    return None


def metrics_view(request):
    """Prometheus text format for allowed scrapers only: it names environments, jobs and view latencies."""
    from django.http import HttpResponse
    from django_prometheus.exports import ExportToDjangoView

    refusal = scrape_refusal(request)
    if refusal is not None:
        status, reason = refusal
        response = HttpResponse(reason + "\n", status=status, content_type="text/plain; charset=utf-8")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="gantry-metrics"'
        return response
    return ExportToDjangoView(request)
