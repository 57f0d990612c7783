"""`{% live version %}`: the attributes that make an element a live fragment (see portal/live.py)."""
from django import template
from django.utils.html import format_html

from portal.live import POLL_EVERY

register = template.Library()


@register.simple_tag(takes_context=True)
def live(context, version, url=None, lazy=False):
    """hx-get/hx-trigger/hx-swap/data-live-version for a polled fragment; nothing when `version` is None.

    The element needs an `id` (the poll is answered for that target). By default it polls the page's
    own URL, query string included, so filters and page numbers survive the swap. `lazy=True` is for a
    placeholder whose content the page did not render (slow or costly to compute): it is fetched at
    once on load (no version yet), then polled like any other fragment.
    """
    if url is None:
        request = context.get("request")
        url = request.get_full_path() if request is not None else ""
    if lazy:
        return format_html('hx-get="{}" hx-trigger="load, every {}" hx-swap="outerHTML"', url, POLL_EVERY)
    if version is None or version == "":
        return ""
    return format_html('hx-get="{}" hx-trigger="every {}" hx-swap="outerHTML" data-live-version="{}"',
                       url, POLL_EVERY, version)
