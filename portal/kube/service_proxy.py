"""An HTTP probe of a Service through the API server's service proxy."""
from __future__ import annotations

from urllib.parse import quote

from .clients import _call
from .errors import NOT_A_STATUS, KubeError, _short
from .timeouts import CONNECT_TIMEOUT


def probe_service(cluster, namespace, service, port, path="/", timeout=None):
    """An HTTP GET through the API server's service proxy: ``(ok, detail)``.

    Any answer from the service (or the proxy's "no endpoints") is a result; only failing to
    talk to the cluster itself (unreachable, credentials, RBAC) raises KubeError.
    """
    target = f"{service}:{port}" if port not in (None, "") else service
    url_path = f"/api/v1/namespaces/{quote(namespace, safe='')}/services/{quote(target, safe=':')}/proxy/{path.lstrip('/')}"

    def send(api):
        response = api.call_api(
            url_path, "GET",
            header_params={"Accept": "*/*"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout or (CONNECT_TIMEOUT, 10),
        )
        return response.status, response.data.decode("utf-8", "replace")

    try:
        status, text = _call(cluster, send)
    except KubeError as error:
        if error.status is None or error.status in (401, 403):
            raise
        if error.api_message == NOT_A_STATUS:  # the service's own answer, passed on by the proxy: its code says it
            return False, f"HTTP {error.status}"
        return False, f"HTTP {error.status}: {_short(error.api_message)}"
    return 200 <= status < 400, f"HTTP {status}: {_short(text)}"
