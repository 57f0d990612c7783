"""Gantry's own Prometheus figures, computed at scrape time (served with django-prometheus at /metrics).

The core reports jobs; each app registers its own gauges with `register_gauge` from its
AppConfig.ready() (environments: environments by tier and status).
"""
import hmac
import ipaddress

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client.core import REGISTRY, GaugeMetricFamily

from portal.accounts import policies
from portal.accounts.models import ApiToken, hash_token
from portal.audit.services import client_ip
from portal.jobs.models import Job

_gauges = []  # (name, help, labels, rows): rows() yields (label values..., value)


def register_gauge(name, help_text, labels, rows):
    """Add a gauge computed at scrape time by `rows()`; registering twice is harmless."""
    if all(gauge[0] != name for gauge in _gauges):
        _gauges.append((name, help_text, labels, rows))


def _job_rows():
    return Job.objects.values_list("queue", "state").annotate(n=Count("pk")).order_by()


register_gauge("gantry_jobs", "Jobs by queue and state", ["queue", "state"], _job_rows)


class GantryCollector:
    def describe(self):
        # Named up front so registering does not run a query at start-up.
        return [GaugeMetricFamily(name, help_text, labels=labels) for name, help_text, labels, _ in _gauges]

    def collect(self):
        families = []
        try:
            for name, help_text, labels, rows in _gauges:
                family = GaugeMetricFamily(name, help_text, labels=labels)
                for *values, count in rows():
                    family.add_metric(list(values), count)
                families.append(family)
        except Exception:  # the database may be down; /readyz reports that, /metrics still answers
            return
        yield from families


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

    found = (ApiToken.objects.select_related("user")
             .filter(digest=hash_token(token), revoked_at__isnull=True, user__is_active=True).first())
    if found is None:
        return 401, "unknown or revoked token"
    if not policies.can_view_everything(found.user):
        return 403, "metrics need a token of a user with a global role (viewer or admin)"
    return None


def metrics_view(request):
    """Prometheus text format for allowed scrapers only: it names environments, jobs and view latencies."""

    refusal = scrape_refusal(request)
    if refusal is not None:
        status, reason = refusal
        response = HttpResponse(reason + "\n", status=status, content_type="text/plain; charset=utf-8")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="gantry-metrics"'
        return response
    return ExportToDjangoView(request)
