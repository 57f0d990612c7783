"""`{% live version %}`: the attributes that make an element a live fragment (see portal/live.py)."""
from django import template
from django.utils.html import format_html

from portal.live import POLL_EVERY

register = template.Library()


@register.simple_tag(takes_context=True)
def live(context, version, url=None):
    """hx-get/hx-trigger/hx-swap/data-live-version for a polled fragment; nothing when `version` is None.

    The element needs an `id` (the poll is answered for that target). By default it polls the page's
    own URL, query string included, so filters and page numbers survive the swap.
    """
    if version is None or version == "":
        return ""
    if url is None:
        request = context.get("request")
        url = request.get_full_path() if request is not None else ""
    return format_html('hx-get="{}" hx-trigger="every {}" hx-swap="outerHTML" data-live-version="{}"',
                       url, POLL_EVERY, version)
