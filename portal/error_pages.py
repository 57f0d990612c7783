"""Gantry's own 404, 403 and 500 pages, in every mode (DEBUG and the demo included), and one log line
per refused request.

Django shows its technical pages when DEBUG is on (the 404 one lists every URL pattern) and logs a
403 with its traceback. `ErrorPagesMiddleware` answers first:

* a path that matches no URL gets the 404 page (CommonMiddleware, outside it, still adds a missing
  trailing slash first);
* `Http404` and `PermissionDenied` raised by a view get the 404 and 403 pages and one log line
  (``refused 403 GET /deployments/7/ user=dee: <reason>``); the service has already audited the
  refusal where the rules say so;
* any other exception is logged once with its traceback (logger ``gantry.errors``) and answered with
  the 500 page, or a JSON ``detail`` under /api/.

The root URLconf points handler404/403/500 at the same views for what happens outside views.
"""
import logging

from django.core import signals
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import Resolver404, get_resolver, resolve

logger = logging.getLogger("gantry.errors")

API_PREFIX = "/api/"


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


def server_error(request):
    """The 500 page: rendered without the request's context (the database may be what failed)."""
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
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Http404):
            log_refusal(request, 404, _reason(exception))
            response = not_found(request, exception)
        elif isinstance(exception, PermissionDenied):
            log_refusal(request, 403, _reason(exception))
            response = forbidden(request, exception)
        else:
            logger.error("error %s %s user=%s", request.method, request.get_full_path(), _user_name(request),
                         exc_info=(type(exception), exception, exception.__traceback__))
            # Tell listeners as Django would (the test client re-raises from this signal).
            signals.got_request_exception.send(sender=None, request=request)
            response = server_error(request)
        response._has_been_logged = True
        return response
