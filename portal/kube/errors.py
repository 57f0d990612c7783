"""KubeError, and every failure of the client stack (the API's Status, urllib3, kubeconfig loading)
turned into one whose text tells the user what to do next."""
from __future__ import annotations

import json

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from .timeouts import CONNECT_TIMEOUT, READ_TIMEOUT


class KubeError(Exception):
    """Talking to a cluster failed. ``str()`` is a sentence a user can act on.

    ``status`` is the HTTP status (None when there was no answer), ``reason`` the API's
    ``Status`` reason (``NotFound``, ``Forbidden``...) or one of Gantry's own
    (``Unreachable``, ``Timeout``, ``TLSError``, ``ConfigError``, ``UnknownKind``, ``BadManifest``),
    ``api_message`` the server's own words when it gave any.
    """

    def __init__(self, message, status=None, reason=None, api_message=""):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.api_message = api_message


def _cluster_url(cluster, api=None):
    if api is not None:
        return api.configuration.host
    return getattr(cluster, "server", "") or getattr(cluster, "name", "the cluster")


NOT_A_STATUS = "the server's answer is not a Kubernetes Status (its body is not shown)"


def _status_of(error):
    """(message, reason, body) of an API error. Only a Kubernetes `Status` object's message is kept:
    any other body (an internal web server's page, when `server` points somewhere else) is never
    echoed into job logs or errors."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return NOT_A_STATUS, error.reason, {}
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    return message or str(error.reason or ""), body.get("reason") or error.reason, body


def _from_api_exception(error, url):
    status = error.status or None
    if not status:  # the client reports TLS failures as status 0
        return _from_transport(error.reason or "", url)
    message, reason, _ = _status_of(error)
    message = _short(message, 500)
    if status == 401:
        text = "the cluster rejected Gantry's credentials (401 Unauthorized); update the cluster's token or kubeconfig"
    elif status == 403 and "exceeded quota" in message:
        text = f"forbidden: {message}; the namespace's ResourceQuota is exceeded: raise the quota or ask for fewer resources"
    elif status == 403:
        text = f"forbidden: {message}; give Gantry's credentials permission for this in the cluster's RBAC"
    elif status == 404:
        text = f"not found: {message}"
    elif status == 409 and reason == "AlreadyExists":
        text = f"already exists: {message}"
    elif status == 409:
        text = f"conflict: {message}"
    elif status == 422:
        text = f"the cluster refused the object as invalid: {message}"
    elif status == 400:
        text = f"the cluster refused the request (400 Bad Request): {message}"
    elif status >= 500:
        text = f"the cluster failed to handle the request ({status} {reason}): {message}; try again in a moment"
    else:
        text = f"the cluster answered {status} {reason}: {message}"
    return KubeError(text, status=status, reason=reason, api_message=message)


def _from_transport(error, url):
    """urllib3's exceptions (or their text) as a sentence about reaching the cluster."""
    cause = getattr(error, "reason", None) if isinstance(error, urllib3.exceptions.MaxRetryError) else error
    text = str(cause)
    if isinstance(cause, urllib3.exceptions.SSLError) or "SSLError" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        return KubeError(f"cannot verify the TLS certificate of the cluster at {url}: {_short(text)}; "
                         "add the cluster's CA certificate (or, for a throwaway cluster, allow insecure TLS)", reason="TLSError")
    if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
        return KubeError(f"the cluster at {url} did not answer within {READ_TIMEOUT} s; "
                         "it may be overloaded, try again in a moment", reason="Timeout")
    if "refused" in text.lower():
        why = "connection refused"
    elif isinstance(cause, urllib3.exceptions.NameResolutionError) or "Name or service not known" in text:
        why = "its host name does not resolve"
    elif isinstance(cause, urllib3.exceptions.NewConnectionError):  # (a subclass of ConnectTimeoutError)
        why = _short(text.split(": ", 1)[-1])
    elif isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
        why = f"no connection within {CONNECT_TIMEOUT} s"
    else:
        why = _short(text)
    return KubeError(f"cannot reach the cluster at {url}: {why}; check the server address and that the cluster is running",
                     reason="Unreachable")


def _short(text, limit=200):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _translate(error, url):
    """Any exception from the client stack as a KubeError."""
    seen = error
    while seen is not None:  # the client sometimes fails while handling the real error
        if isinstance(seen, KubeError):
            return seen
        if isinstance(seen, ApiException):
            return _from_api_exception(seen, url)
        if isinstance(seen, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
            return _from_transport(seen, url)
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, ConfigException):
        return KubeError(f"the cluster's connection settings cannot be used: {error}", reason="ConfigError")
    return KubeError(f"unexpected failure talking to the cluster at {url}: {_short(repr(error))}", reason="ClientError")


def _is_missing(error, name):
    """A 404 about the object itself, not about an API the cluster does not serve."""
    if error.status != 404:
        return False
    return error.reason == "NotFound" and f'"{name}" not found' in error.api_message
