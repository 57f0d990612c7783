"""{% audit_rows events %}: the rows of the audit table (portal.audit.readable.rows_html)."""
from django import template

from portal.audit.readable import rows_html

register = template.Library()


@register.simple_tag
def audit_rows(events):
    return rows_html(events)
