"""The sandbox cluster's HTTP side: a keep-alive request handler (reading the body, the bearer token,
answering JSON or text) and the threading server that holds the open connections."""

from __future__ import annotations

import hmac
import json
import logging
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import errors
from .routing import Router

logger = logging.getLogger(__name__)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's connection pool expects
    server_version = "gantry-sandbox"
    timeout = 60  # idle keep-alive connections are dropped after a minute

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm meets the
        # client's delayed ACK and every keep-alive request waits 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):
        if self.server.cluster.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        cluster = self.server.cluster
        try:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            body = self._read_body()
            segments = [unquote(s) for s in url.path.split("/") if s]
            if segments[:1] == ["sandbox"]:
                code, payload = cluster.control(method, segments[1:], body)
            else:
                self._authenticate(cluster.token)
                code, payload = Router(cluster.store, self).route(method, segments, query, body)
        except errors.ApiError as error:
            code, payload = error.code, error.status()
        except Exception as error:  # a bug in the sandbox: answer like an API server would
            logger.exception("sandbox cluster failed on %s %s", method, self.path)
            code, payload = 500, errors.ApiError(500, "InternalError", f"sandbox error: {error!r}").status()
        self._send(code, payload)

    def _authenticate(self, token):
        if not token:
            return
        header = self.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            raise errors.unauthorized()

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if content_type.endswith("yaml"):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as error:
            raise errors.bad_request(f"the body of the request could not be decoded as {content_type or 'JSON'}: {error}") from None

    def _send(self, code, payload):
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, cluster):
        self.cluster = cluster
        self.connections = set()
        super().__init__(address, SandboxHandler)
