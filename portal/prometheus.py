"""The one gateway to Prometheus' HTTP API (instant queries, and checking a PromQL expression).

Gantry asks Prometheus; it never parses PromQL itself. Errors leave as ``PrometheusError`` with a
sentence a person can act on: Prometheus' own message when it refused the query, or what failed
when it could not be reached (``unreachable`` is then true).
"""
from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from portal.outbound import open_configured

TIMEOUT = 5.0


class PrometheusError(Exception):
    def __init__(self, message, *, unreachable=False):
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable


def _get(base_url, path, params, timeout):
    url = base_url.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "gantry"})
    try:
        with open_configured(request, timeout) as response:  # an operator-set http(s) URL
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            answer = json.loads(body)
        except ValueError:
            raise PrometheusError(f"Prometheus at {base_url} answered HTTP {error.code}", unreachable=error.code >= 500) from None
        if answer.get("status") == "error":
            # 400 bad_data / 422 execution: Prometheus refused the query; 503 and such: it is not able to answer.
            raise PrometheusError(answer.get("error") or f"HTTP {error.code}", unreachable=error.code >= 500) from None
        raise PrometheusError(f"Prometheus at {base_url} answered HTTP {error.code}", unreachable=True) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PrometheusError(f"Prometheus at {base_url} could not be reached: {reason}", unreachable=True) from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise PrometheusError(f"Prometheus at {base_url} did not answer JSON; is this a Prometheus URL?", unreachable=True) from None
    if answer.get("status") != "success":
        raise PrometheusError(answer.get("error") or "Prometheus refused the query")
    return answer.get("data") or {}


def query(base_url, expression, *, timeout=TIMEOUT):
    """The value of an expression that returns one number now, or None when it returns no data.

    Raises PrometheusError when Prometheus refuses the expression, when it returns more than one
    series (the rule must aggregate, e.g. with ``sum``), or when it cannot be reached.
    """
    data = _get(base_url, "/api/v1/query", {"query": expression}, timeout)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result[1])
    if kind == "vector":
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"the query returns {len(result)} series; aggregate it to one number (for example with sum(...))")
        return _number(result[0]["value"][1])
    raise PrometheusError(f"the query returns a {kind}; a rule needs one number (an instant vector of one series or a scalar)")


def _number(text):
    value = float(text)
    return None if math.isnan(value) else value


def check_expression(base_url, expression, *, timeout=TIMEOUT):
    """None when Prometheus accepts the expression, else its message (or why it could not be asked)."""
    try:
        data = _get(base_url, "/api/v1/query", {"query": expression}, timeout)
    except PrometheusError as error:
        return error.message
    if data.get("resultType") not in ("vector", "scalar"):
        return f"the query returns a {data.get('resultType')}; a rule needs one number"
    return None


def is_ready(base_url, *, timeout=2.0):
    request = urllib.request.Request(base_url.rstrip("/") + "/-/ready", headers={"User-Agent": "gantry"})
    try:
        with open_configured(request, timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
