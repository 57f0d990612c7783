"""Audit log downloads (CSV, JSON lines), shared by the audit page and GET /api/v1/audit/export."""
from django.db import transaction
from django.http import StreamingHttpResponse

from portal.errors import InvalidInput

from .queries import export_csv, export_jsonl
from .services import record


def stream_export(request, queryset, fmt):
    """The events of `queryset` as a CSV or JSON-lines download; the export itself is audited."""
    if fmt not in ("csv", "jsonl"):
        raise InvalidInput("format: must be csv or jsonl")
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    body = export_csv(queryset) if fmt == "csv" else export_jsonl(queryset)
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="gantry-audit.{fmt}"'
    with transaction.atomic():
        record("audit.export", request=request, detail={"format": fmt, "filters": {
            k: v for k, v in request.GET.items() if k != "format"}})
    return response
