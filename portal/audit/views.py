"""The audit log page and its downloads (same filters as GET /api/v1/audit)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from portal.errors import InvalidInput
from portal.pages import needs_role

from .downloads import stream_export
from .models import AuditEvent
from .queries import FILTERS, FilterError, cursor_value, filter_events, keyset_page, require_auditor
from .readable import annotate

PER_PAGE = 50


@login_required
@needs_role
def audit_list(request):
    require_auditor(request.user)
    filters = {name: request.GET.get(name, "") for name in FILTERS}
    error, status = "", 200
    try:
        events = filter_events(request.GET)
        page = keyset_page(events, before=cursor_value("before", request.GET.get("before")),
                           after=cursor_value("after", request.GET.get("after")), limit=PER_PAGE)
    except FilterError as exc:
        error, status = str(exc), 400
        page = keyset_page(AuditEvent.objects.none())
    annotate(page.object_list)
    query = request.GET.copy()
    for name in ("page", "format", "before", "after"):
        query.pop(name, None)
    return render(request, "audit/list.html", {
        "section": "audit",
        "page": page,
        "page_query": query.urlencode(),
        "filters": filters,
        "filtered": any(filters.values()),
        "filter_error": error,
        "outcomes": [value for value, _ in AuditEvent.OUTCOME_CHOICES],
        "export_query": query.urlencode(),
    }, status=status)


@login_required
@needs_role
def audit_export(request):
    require_auditor(request.user)
    query = request.GET.copy()
    query.pop("format", None)
    back = reverse("audit_list") + (f"?{query.urlencode()}" if query else "")
    try:
        return stream_export(request, filter_events(request.GET), request.GET.get("format", "jsonl"))
    except (FilterError, InvalidInput) as exc:
        messages.error(request, str(exc))
        return redirect(back)
