"""Live fragments: the ONE way a page keeps what it shows true while it is open.

A part of a page whose state can change while someone looks at it (a deployment's state, an
environment's status, a job list, the navigation's approvals badge) is a *live fragment*: an element
with an id that htmx polls every second. The server answers the poll cheaply:

1. it computes a **version** of the state the fragment shows, from a query or two of aggregates
   (``max(updated_at)``, counts, a state column), never by rendering;
2. when the client already holds that version (``If-None-Match``) it answers **304** with no body,
   and the page is left alone: scroll, focus, typed input, open details and filters all stay;
3. otherwise it renders the fragment (the same template include the full page used) with the new
   version in it, and htmx swaps it in place (``outerHTML``).

So a change shows within about a second (the issue's budget is 2 s) and an unchanged page costs a
version query per second per open tab.

The convention, for any page
----------------------------
Template: the fragment is one include whose root element has an ``id`` and the ``live`` tag::

    {% load live %}
    <section id="env-jobs" {% live live_version %}> ... </section>

``{% live version %}`` writes ``hx-get`` (by default the page's own URL with its query string, so
filters and page numbers are kept; ``{% live version url=... %}`` for another one),
``hx-trigger="every 1s"``, ``hx-swap="outerHTML"`` and ``data-live-version``. When there is no version
(``None``, e.g. a job that has finished and can no longer change) it writes nothing and the element
stops polling. ``{% live None url=... lazy=True %}`` marks a placeholder the page did not fill
(costly or slow to compute): it is fetched on load, then polled. ``static/gantry.js`` sends ``data-live-version`` as ``If-None-Match`` and tells htmx not
to swap a 304 (htmx 2 would otherwise swap the empty body).

View: the page's view answers its fragments before rendering the page::

    def environment_detail(request, slug):
        env = ...
        poll = live.Poll(request)
        if poll.wants("env-jobs"):
            return poll.respond(jobs_parts(env), lambda tag: render(
                request, "environments/_jobs.html", dict(jobs_context(env), jobs_version=tag)))
        ...
        context["jobs_version"] = poll.version_for(jobs_parts(env), "env-jobs")  # the same parts

``Poll.wants(id)`` is true for an htmx request whose target (``HX-Target``) is that id, i.e. a poll
of that fragment. ``Poll.respond(parts, render)`` makes the version from ``parts`` (plus the user,
the time zone and the fragment id, since they change what is rendered), answers 304 when it
matches, and otherwise calls ``render(tag)``, which renders the fragment with that tag in its
context. The full page puts ``poll.version_for(parts, id)`` in its context: the same parts give the
same tag, so the first poll after a page load is already a 304. Pages with a dedicated fragment URL
(``environment_live``) pass ``fragment_id`` to ``respond`` and ``url=`` to the tag.

Tips
----
* Version parts must cover everything the fragment shows that can change: use ``state_of(queryset)``
  (one query: count and max of a timestamp) or small value tuples. Include nothing random.
* Keep forms with typed input outside fragments, or give the inputs ``id`` + ``hx-preserve``.
* A fragment that shows relative times ("3 minutes ago") should put the minute in its parts.
* A poll whose session has ended is answered by ``LivePollMiddleware`` with ``HX-Refresh``: the page
  reloads and shows the login page, instead of htmx following the login redirect and swapping the
  login form into the fragment. gantry.js marks polls with ``X-Gantry-Live: 1``.
"""
import hashlib

from django.db.models import Count, Max, Q
from django.http import HttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers

POLL_EVERY = "1s"  # within the 2 s budget: a change shows after at most ~1 s plus a render


def version(*parts):
    """A short tag for the state described by `parts` (any values with a stable repr)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=10).hexdigest()


def state_of(queryset, *fields, by=None):
    """(count, latest of each field[, count per value]) of a queryset in one aggregate query.

    A cheap version part: with `updated_at` (the default) an edit bumps it and an insert or a delete
    moves the count; a field of related rows (`"approvals__at"`) follows those rows too. For rows without one, name the timestamps a change sets (`"started_at",
    "finished_at"`) and/or count rows per value of a state column: `by=("state", ["queued", ...])`.
    """
    fields = fields or ("updated_at",)
    aggregates = {f"m{i}": Max(f) for i, f in enumerate(fields)}
    # A field across a to-many relation ("approvals__at": the latest approval) joins its rows in:
    # count the queryset's own rows once each, so the count stays the list's length.
    counted = Count("pk", distinct=any("__" in f for f in fields))
    if by is not None:
        column, values = by
        aggregates.update({f"c{i}": Count("pk", filter=Q(**{column: v})) for i, v in enumerate(values)})
    row = queryset.order_by().aggregate(n=counted, **aggregates)
    parts = [row["n"]]
    for i in range(len(fields)):
        value = row[f"m{i}"]
        parts.append(value.isoformat() if hasattr(value, "isoformat") else value)
    if by is not None:
        parts.extend(row[f"c{i}"] for i in range(len(by[1])))
    return tuple(parts)


def _reload():
    response = HttpResponse(status=200)
    response["HX-Refresh"] = "true"
    add_never_cache_headers(response)
    return response


class LivePollMiddleware:
    """A poll of a live fragment from a signed-out browser reloads the page (to the login page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.headers.get("X-Gantry-Live") and not getattr(request.user, "is_authenticated", False):
            return _reload()
        return self.get_response(request)


def _quoted(tag):
    return f'"{tag}"'


def client_version(request):
    """The version the client holds, from If-None-Match (quotes and a weak prefix removed)."""
    header = request.headers.get("If-None-Match", "").strip()
    return header.removeprefix("W/").strip('"')


class Poll:
    """One request, seen as a possible poll of a live fragment."""

    def __init__(self, request):
        self.request = request
        htmx = getattr(request, "htmx", None)
        self.is_poll = bool(htmx) and not htmx.history_restore_request and request.method == "GET"
        self.target = (htmx.target or "") if self.is_poll else ""

    def wants(self, fragment_id):
        """Is this a poll of the fragment with that id?"""
        return self.is_poll and self.target == fragment_id

    def version_for(self, parts, fragment_id=None):
        user = self.request.user
        return version(fragment_id or self.target, getattr(user, "pk", None),
                       timezone.get_current_timezone_name(), parts)

    def respond(self, parts, render, fragment_id=None):
        """304 when the client has this version; otherwise `render(tag)`'s response, tagged with it."""
        if not getattr(self.request.user, "is_authenticated", False):
            return _reload()
        tag = self.version_for(parts, fragment_id)
        response = HttpResponse(status=304) if client_version(self.request) == tag else render(tag)
        response["ETag"] = _quoted(tag)
        add_never_cache_headers(response)  # the browser must not answer for us from its cache
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        return response
