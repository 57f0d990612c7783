"""Gantry's own 404, 403 and 500 pages, in every mode (DEBUG and the demo included), and one log line
per refused request.

Django shows its technical pages when DEBUG is on (the 404 one lists every URL pattern) and logs a
403 with its traceback. `ErrorPagesMiddleware` answers first:

* a path that matches no URL gets the 404 page (CommonMiddleware, outside it, still adds a missing
  trailing slash first);
* `Http404` and `PermissionDenied` raised by a view get the 404 and 403 pages and one log line
  (``refused 403 GET /deployments/7/ user=dee: <reason>``); a 403 no service audited (a page the
  user's role does not open) is audited here, once, as the API does (`portal.errors.audit_refusal`);
* the database not answering (`OperationalError`/`InterfaceError`: PostgreSQL restarting, a network
  cut, a statement timeout) gets a 503 with `Retry-After` and one log line, not a 500 and a
  traceback: nothing is wrong with the request, and the next one reconnects;
* any other exception is logged once with its traceback (logger ``gantry.errors``) and answered with
  the 500 page, or a JSON ``detail`` under /api/.

The root URLconf points handler404/403/500 at the same views for what happens outside views.
"""
import logging
import sys

from django.core import signals
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import Resolver404, get_resolver, resolve

from portal.errors import audit_refusal

logger = logging.getLogger("gantry.errors")

API_PREFIX = "/api/"
DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def _user_name(request):
    user = getattr(request, "user", None)
    return user.get_username() if user is not None and user.is_authenticated else "-"


def log_refusal(request, status, reason=""):
    logger.warning("refused %s %s %s user=%s%s", status, request.method, request.get_full_path(),
                   _user_name(request), f": {reason}" if reason else "")


def not_found(request, exception=None):
    reason = _reason(exception)
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": reason or f"nothing at {request.path}"}, status=404)
    return render(request, "404.html", {"request_path": request.path}, status=404)


def forbidden(request, exception=None):
    reason = _reason(exception)
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": reason or "not allowed"}, status=403)
    return render(request, "403.html", {"exception": reason}, status=403)


def log_database_down(request, exception):
    """One line, no traceback: the request was fine, the database did not answer."""
    text = str(exception).strip()
    logger.error("database unavailable %s %s: %s", request.method, request.get_full_path(),
                 text.splitlines()[0] if text else type(exception).__name__)


def database_unavailable(request):
    """503 while the database does not answer: rendered without the request's context (no query)."""
    if request.path.startswith(API_PREFIX):
        response = JsonResponse({"detail": "Gantry's database is not answering; nothing was changed. "
                                           f"Try again in {RETRY_AFTER_SECONDS} seconds."}, status=503)
    else:
        response = HttpResponse(loader.get_template("503.html").render({"retry_after": RETRY_AFTER_SECONDS}),
                                status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request):
    """The 500 page: rendered without the request's context (the database may be what failed).
    Also Django's handler500 for what fails outside views (a middleware reading the session):
    a database that does not answer gets the 503 there too."""
    if isinstance(sys.exc_info()[1], DATABASE_DOWN):
        log_database_down(request, sys.exc_info()[1])
        return database_unavailable(request)
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "internal error: it is logged; try again or tell an admin"}, status=500)
    return HttpResponseServerError(loader.get_template("500.html").render({}))


def _reason(exception):
    if exception is None:
        return ""
    text = str(exception.args[0]) if getattr(exception, "args", None) else ""
    return "" if isinstance(text, dict) or text.startswith("{") else text


def _resolves(request):
    try:
        resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return True


class ErrorPagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        get_resolver()  # warm the resolver once

    def __call__(self, request):
        if not _resolves(request):
            log_refusal(request, 404)
            response = not_found(request)
            response._has_been_logged = True  # one line, ours
            return response
        try:
            # The first query of most requests (session, then user), made here so that a database
            # that does not answer gets the 503 rather than failing in a middleware further in.
            if hasattr(request, "user"):
                request.user.is_authenticated  # noqa: B018 (evaluated for its queries)
        except DATABASE_DOWN as exc:
            return self._database_down(request, exc)
        return self.get_response(request)

    @staticmethod
    def _database_down(request, exception):
        log_database_down(request, exception)
        response = database_unavailable(request)
        response._has_been_logged = True
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, Http404):
            log_refusal(request, 404, _reason(exception))
            response = not_found(request, exception)
        elif isinstance(exception, PermissionDenied):
            log_refusal(request, 403, _reason(exception))
            audit_refusal(request, exception, _reason(exception))
            response = forbidden(request, exception)
        elif isinstance(exception, DATABASE_DOWN):
            return self._database_down(request, exception)
        else:
            logger.error("error %s %s user=%s", request.method, request.get_full_path(), _user_name(request),
                         exc_info=(type(exception), exception, exception.__traceback__))
            # Tell listeners as Django would (the test client re-raises from this signal).
            signals.got_request_exception.send(sender=None, request=request)
            response = server_error(request)
        response._has_been_logged = True
        return response
