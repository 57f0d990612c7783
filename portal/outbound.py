"""Outbound HTTP to addresses users configure (notification webhooks): the one gateway for it.

A webhook URL is set by an environment's admin, but the request leaves from Gantry's worker,
inside the network. So the host is resolved and every address it resolves to must be public:
loopback, private (RFC 1918, unique-local), link-local (which holds cloud metadata at
169.254.169.254), multicast, reserved and unspecified addresses are refused, at save time and
again at send time, and the connection goes to the very address that was checked (no second
DNS answer can swap it for an internal one). Redirects are never followed. On-premises chat
servers on private addresses are allowed by listing them in GANTRY_WEBHOOK_ALLOWED_HOSTS
(host names, addresses or networks). Failures are reported in one wording, so a job log never
tells an open port from a closed one; the precise reason goes to the server log only.
"""
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                      ipaddress.ip_address("100.100.100.200")}


class UnsafeDestination(ValueError):
    """The URL may not be called from Gantry's network (the message says why, for the admin)."""


class DeliveryFailed(Exception):
    """The webhook could not be delivered; `str()` is the same whatever the reason."""


def _allowed(host, address):
    for entry in getattr(settings, "GANTRY_WEBHOOK_ALLOWED_HOSTS", []):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _forbidden(address):
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "not a public address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _forbidden(address.ipv4_mapped)
    if not address.is_global:
        return "not a public address"
    return None


def resolve(url, resolve_names=True):
    """(scheme, host, port, path, checked address) of `url`, or UnsafeDestination. Without
    `resolve_names`, a host name that does not resolve passes (it is checked again at send time)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeDestination("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("only http(s) URLs with a host name are allowed")
    if parts.username or parts.password:
        raise UnsafeDestination("credentials in the URL are not allowed")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        if not resolve_names:
            return parts.scheme, host, port, "/", None
        raise UnsafeDestination(f"the host name {host} does not resolve") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        why = None if _allowed(host, address) else _forbidden(address)
        if why:
            raise UnsafeDestination(f"{host} resolves to {address}, {why}; Gantry does not call addresses inside "
                                    "its network (an admin can allow a chat server in GANTRY_WEBHOOK_ALLOWED_HOSTS)")
        addresses.append(address)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port, path, addresses[0]


def check_url(url, resolve_names=True):
    """Raise UnsafeDestination unless `url` may be called; used when the URL is saved."""
    resolve(url, resolve_names=resolve_names)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, address, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._address = str(address)

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, address, *args, **kwargs):
        super().__init__(*args, context=ssl.create_default_context(), **kwargs)
        self._address = str(address)

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post_json(url, payload, timeout=5):
    """POST `payload` as JSON to `url` after checking where it goes; the HTTP status, or DeliveryFailed.

    Redirects are not followed (a 3xx is a failure), and every failure raises the same message."""
    try:
        scheme, host, port, path, address = resolve(url)
        cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        connection = cls(address, host, port, timeout=timeout)
        try:
            connection.request("POST", path, body=json.dumps(payload).encode(),
                               headers={"Content-Type": "application/json", "User-Agent": "Gantry"})
            status = connection.getresponse().status
        finally:
            connection.close()
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}")
        return status
    except (UnsafeDestination, DeliveryFailed, OSError, http.client.HTTPException, ValueError) as exc:
        logger.info("webhook delivery failed: %s", exc)
        raise DeliveryFailed("the webhook could not be delivered (Gantry does not say why in the job log; "
                             "check the URL, and that it is a public address or allow-listed)") from None


# URLs the operator configured, not a user (Prometheus, the demo's own sandbox): they are inside the
# network by design, so no address check; but only http(s) is ever opened. The opener has no
# file:, ftp: or data: handler, so another scheme (also in a redirect) is an "unknown url type" error.
_HTTP_ONLY = urllib.request.OpenerDirector()
for _handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), urllib.request.HTTPHandler(),
                 urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(),
                 urllib.request.HTTPRedirectHandler(), urllib.request.HTTPErrorProcessor()):
    _HTTP_ONLY.add_handler(_handler)


def open_configured(request, timeout):
    """Open a `urllib.request.Request` to an operator-configured http(s) URL; the response (a context manager).

    Raises `urllib.error.URLError` for any other scheme, and what `urlopen` raises otherwise."""
    if urlsplit(request.full_url).scheme not in ("http", "https"):
        raise urllib.error.URLError(f"only http(s) URLs are opened, not {request.full_url!r}")
    return _HTTP_ONLY.open(request, timeout=timeout)
