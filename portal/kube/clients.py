"""One ``ApiClient`` per cluster's connection settings (never the global default), cached so that an
unchanged cluster keeps its connection pool; and a call through it, whose failures leave as KubeError."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from .errors import KubeError, _cluster_url, _translate
from .kubeconfig import _server_kubeconfig, parse_kubeconfig, read_kubeconfig_file, validate_kubeconfig
from .timeouts import POOL_SIZE, TIMEOUT


_clients = OrderedDict()  # fingerprint -> ApiClient; connection pools are worth keeping
_clients_lock = threading.Lock()
_CLIENT_CACHE_SIZE = 32


def _digest(text):
    return hashlib.sha256((text or "").encode()).hexdigest()


def _fingerprint_and_loader(cluster):
    """What identifies this cluster's connection settings, and how to load them."""
    mode = getattr(cluster, "mode", "server")
    context = getattr(cluster, "context", "") or None
    if mode == "server":
        if not getattr(cluster, "server", ""):
            raise KubeError(f"cluster {cluster.name!r} has no server address; set one like https://host:6443", reason="ConfigError")
        try:
            kubeconfig = _server_kubeconfig(cluster)
        except ValueError as error:  # the stored token no longer decrypts
            raise KubeError(str(error), reason="ConfigError") from None
        return ("server", _digest(json.dumps(kubeconfig, sort_keys=True))), lambda cfg: _load_dict(kubeconfig, None, cfg)
    if mode in ("kubeconfig", "kubeconfig_path"):
        if mode == "kubeconfig":
            try:
                text, origin = cluster.get_kubeconfig() or "", "the cluster's kubeconfig"
            except ValueError as error:  # the stored secret no longer decrypts
                raise KubeError(str(error), reason="ConfigError") from None
        else:
            path = os.path.expanduser(getattr(cluster, "kubeconfig_path", "") or "")
            try:
                text = read_kubeconfig_file(path)
            except OSError as error:
                raise KubeError(f"cannot read the kubeconfig file {path!r}: {error.strerror or error}; "
                                "check the path and that Gantry may read it", reason="ConfigError") from None
            origin = f"the kubeconfig file {path}"
        try:
            data = parse_kubeconfig(text, context or "", pasted=mode == "kubeconfig")
        except ValueError as error:
            raise KubeError(f"{origin} cannot be used: {error}", reason="ConfigError") from None
        if not context and not data.get("current-context"):
            context = validate_kubeconfig(text)[0]
        return (mode, _digest(text), context), lambda cfg: _load_dict(data, context, cfg)
    if mode == "in_cluster":
        return ("in_cluster",), lambda cfg: k8s_config.load_incluster_config(client_configuration=cfg)
    raise KubeError(f"cluster {cluster.name!r} has an unknown connection mode {mode!r}", reason="ConfigError")


def _load_dict(data, context, configuration):
    k8s_config.load_kube_config_from_dict(data, context=context, client_configuration=configuration, persist_config=False)


def api_client_for(cluster):
    """An ``ApiClient`` for this cluster, with its own Configuration (never the global default).

    Clients are cached by their settings, so a changed token or kubeconfig gets a new client
    and an unchanged one keeps its connection pool.
    """
    fingerprint, load = _fingerprint_and_loader(cluster)
    with _clients_lock:
        if fingerprint in _clients:
            _clients.move_to_end(fingerprint)
            return _clients[fingerprint]
    configuration = k8s.Configuration()
    try:
        load(configuration)
    except (ConfigException, ValueError, OSError, KeyError, TypeError) as error:
        raise KubeError(f"the connection settings of cluster {cluster.name!r} cannot be used: {error}", reason="ConfigError") from None
    # One quick retry for a refused or reset connection; no retry storms, no status retries.
    configuration.retries = urllib3.Retry(total=1, connect=1, read=0, status=0, redirect=0, other=0, backoff_factor=0.1)
    # Probes share one client from many threads: a pool smaller than them opens and drops a
    # connection per request beyond its size.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, POOL_SIZE)
    api = k8s.ApiClient(configuration)
    api.user_agent = "gantry"
    with _clients_lock:
        _clients[fingerprint] = api
        while len(_clients) > _CLIENT_CACHE_SIZE:
            _clients.popitem(last=False)
    return api


def forget_clients():
    """Drop cached clients (tests, or after a cluster's settings change outside the model)."""
    with _clients_lock:
        _clients.clear()


def _call(cluster, fn):
    api = api_client_for(cluster)
    try:
        return fn(api)
    except Exception as error:  # noqa: BLE001 - everything leaves as KubeError
        raise _translate(error, _cluster_url(cluster, api)) from error


def _request(cluster, method, path, query=None, body=None, content_type="application/json", timeout=TIMEOUT):
    """One API request through the cluster's client; returns the decoded JSON answer."""

    def send(api):
        return api.call_api(
            path, method,
            query_params=list(query or []),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            response_types_map={200: "object", 201: "object", 202: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=timeout,
        )

    return _call(cluster, send)
