"""The small helpers every page module shares (core: imports no app).

Pages parse input, call a service, render (DESIGN rule 1). Who may see or do what is asked of
`portal.accounts.policies`; refusals raised by services (`Forbidden`, `NotFound`) become the
403 and 404 pages here.
"""
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from portal.accounts import policies
from portal.errors import Conflict, Forbidden, InvalidInput, NotFound, audit_conflict, refuse_unsafe


def require(refusal):
    """The 403 page when a policy gives a `refusal` (its sentence); nothing when it gives None."""
    if refusal:
        raise PermissionDenied(refusal)


def needs_role(view):
    """Show the "no role yet" page to users without any role (on reads), and turn refusals into pages.

    Writes (POST) go on to the service even without a role, so the refusal is audited there.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method in ("GET", "HEAD") and not policies.has_any_role(request.user):
            return render(request, "no_role.html")
        if request.method in ("GET", "HEAD"):
            try:
                refuse_unsafe({key: request.GET.getlist(key) for key in request.GET})
            except InvalidInput as exc:
                return render(request, "bad_input.html", {"errors": exc.messages}, status=400)
        return refusals_as_pages(view)(request, *args, **kwargs)

    return wrapper


def refusals_as_pages(view):
    """Forbidden -> the 403 page, NotFound -> the 404 page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Forbidden as exc:
            raise PermissionDenied("; ".join(exc.messages)) from exc
        except NotFound as exc:
            raise Http404("; ".join(exc.messages)) from exc

    return wrapper


def paginate(request, queryset, per_page=None, count=None):
    """The requested page of `queryset` (a bad or too-large page number gives the nearest page).

    `count`: the number of rows when the caller already has it (a live list's version counts them),
    which saves the paginator its COUNT query."""
    paginator = Paginator(queryset, per_page or settings.GANTRY_PAGE_SIZE)
    if count is not None:
        paginator.count = count
    return paginator.get_page(request.GET.get("page"))


def safe_next(request, fallback):
    """Where a button's form asks to go back to (its `next` field) when that is a page of this site;
    `fallback` otherwise, so that a crafted link cannot send the user elsewhere."""

    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def field_errors(texts):
    """Split service messages ("field: text") into {field: [text, ...]} to show them by their inputs.

    "deployment_windows[0].start: ..." is filed under "deployment_windows"; messages without a
    field prefix go under "__all__".
    """
    grouped = {}
    for message in texts:
        head, sep, rest = message.partition(": ")
        key = head.split("[")[0].split(".")[0] if sep and " " not in head else "__all__"
        grouped.setdefault(key, []).append(message)
    return grouped


def form_page(request, template, context, errors, status=400):
    """Re-render a form after the service refused the input: all messages, and by field."""
    context = dict(context, errors=errors, errors_by_field=field_errors(errors))
    return render(request, template, context, status=status)


def form_action(request, action, *, template, context, done, then, conflict_status=409):
    """A form's POST: run `action()` (the service, which checks and audits). A refusal shows the form
    again (`template` with `context`, the messages by field; 400, or `conflict_status` for a Conflict);
    success flashes `done` (or `done(result)`, nothing when it is empty) and redirects to `then` (or
    `then(result)`): a URL or a URL name."""

    try:
        result = action()
    except InvalidInput as exc:
        return form_page(request, template, context, exc.messages)
    except Conflict as exc:
        audit_conflict(request, exc)
        return form_page(request, template, context, exc.messages, conflict_status)
    message = done(result) if callable(done) else done
    if message:
        messages.success(request, message)
    return redirect(then(result) if callable(then) else then)


def button_action(request, action, *, done, back, then=None, refusals=(Conflict,), refused="{}"):
    """A button's POST (nothing to show again): run `action()` (the service, which checks and audits).
    A refusal of `refusals` comes back as a message on `back` (its messages joined by "; ", put into
    the `refused` format, e.g. "Cannot retry: {}."); success as the message `done` (or
    `done(result)`) on `then` (or `then(result)`, else `back`). `back`/`then`: a response, or what
    `redirect` takes (a URL or a URL name)."""

    def go(target):
        return target if isinstance(target, HttpResponse) else redirect(target)

    try:
        result = action()
    except refusals as exc:
        if isinstance(exc, Conflict):
            audit_conflict(request, exc)
        messages.error(request, refused.format("; ".join(exc.messages)))
        return go(back)
    messages.success(request, done(result) if callable(done) else done)
    return go(then(result) if callable(then) else (then or back))


def delete_page(request, *, confirm, delete, done, back, may_delete=None):
    """A page that removes something. GET: after `may_delete(request)` (which raises PermissionDenied
    for who may not), the confirmation page with `confirm` (title, what, consequence, cancel_url).
    POST: `delete()` (the service, which checks again and audits); its Conflict comes back as a
    message on `back`, success as `done` = (message, url)."""
    if request.method != "POST":
        if may_delete is not None:
            may_delete(request)
        return render(request, "confirm_delete.html", confirm)
    message, url = done
    return button_action(request, delete, done=message, back=back, then=url)
