"""The one gateway to Kubernetes. The rest of Gantry calls these functions, never the client.

Each function takes a ``cluster`` (the Cluster model, or anything with the same attributes:
``mode``, ``server``, ``get_token()``, ``ca_data``, ``insecure``, ``kubeconfig_path``,
``get_kubeconfig()``, ``context``, ``name``) and works on plain dicts, so callers never handle
client models. Every failure, whatever layer it comes from (the API's ``Status``, urllib3,
kubeconfig loading), leaves as a ``KubeError`` whose text tells the user what to do next.

Objects are written with server-side apply, so writing the same manifest twice is a no-op
and a retried job is safe.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections import OrderedDict
from urllib.parse import quote

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
FIELD_MANAGER = "gantry"
POOL_SIZE = int(os.environ.get("GANTRY_KUBE_POOL_SIZE", "64"))  # kept-alive connections per cluster

# apiVersion, kind -> (plural, namespaced). The kinds Gantry reads and writes; a real cluster
# serves many more, and adding one here is all it takes to manage it.
KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}

# Metadata the server owns: stripped from applied manifests so that applying an object read
# back from the cluster works (the API refuses managedFields in an apply).
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")

_IMAGE_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_START_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


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


# --- kubeconfig -----------------------------------------------------------------------------


# In a kubeconfig pasted into Gantry these would run a program or read a file on Gantry's host.
HOST_REACHING_USER_KEYS = ("exec", "auth-provider", "tokenFile", "client-certificate", "client-key")
HOST_REACHING_CLUSTER_KEYS = ("certificate-authority",)


def parse_kubeconfig(text, context="", pasted=False):
    """Load kubeconfig YAML text into a dict, refusing what could not work, with the reason.

    Raises ``ValueError`` when the text is not YAML, is not a kubeconfig, names a context it
    does not define, or leaves the context to use ambiguous. A `pasted` kubeconfig (stored in
    Gantry) may not run programs or read files on Gantry's host: embed tokens and certificates
    (`token`, `client-certificate-data`, `certificate-authority-data`) instead.
    """
    from portal import safe_yaml

    try:
        data = safe_yaml.safe_load(text or "")
    except safe_yaml.YamlLimitError as error:
        raise ValueError(f"the kubeconfig is refused: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"the kubeconfig is not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None
    if not isinstance(data, dict):
        raise ValueError("the kubeconfig is not a YAML mapping; paste the whole file, starting with 'apiVersion: v1'")
    missing = [key for key in ("clusters", "contexts", "users") if not isinstance(data.get(key), list) or not data[key]]
    if missing:
        raise ValueError(f"this is not a usable kubeconfig: it has no {', no '.join(missing)}")
    contexts = {entry.get("name"): entry.get("context") or {} for entry in data["contexts"] if isinstance(entry, dict)}
    names = [name for name in contexts if name]
    chosen = context or data.get("current-context") or (names[0] if len(names) == 1 else "")
    if not chosen:
        raise ValueError(f"the kubeconfig has no current-context; choose one of its contexts: {', '.join(names)}")
    if chosen not in contexts:
        raise ValueError(f"the kubeconfig has no context named {chosen!r}; its contexts are: {', '.join(names)}")
    for section, key in (("clusters", "cluster"), ("users", "user")):
        wanted = contexts[chosen].get(key)
        defined = {entry.get("name") for entry in data[section] if isinstance(entry, dict)}
        if wanted not in defined:
            raise ValueError(f"context {chosen!r} refers to {key} {wanted!r}, which the kubeconfig does not define under {section}")
    if pasted:
        for section, key, forbidden in (("users", "user", HOST_REACHING_USER_KEYS),
                                        ("clusters", "cluster", HOST_REACHING_CLUSTER_KEYS)):
            for entry in data[section]:
                body = (entry or {}).get(key) or {} if isinstance(entry, dict) else {}
                found = [k for k in forbidden if k in body]
                if found:
                    raise ValueError(f"{section[:-1]} {entry.get('name')!r} uses {', '.join(found)}, which would run a "
                                     "program or read a file on the Gantry host; embed the credentials instead "
                                     "(token, client-certificate-data, client-key-data, certificate-authority-data), "
                                     "or register the kubeconfig as a file path")
    return data


def read_kubeconfig_file(path):
    """The text of a kubeconfig file on Gantry's host: the one place such a file is read. Raises OSError."""
    with open(os.path.expanduser(path or ""), encoding="utf-8") as handle:
        return handle.read()


def validate_kubeconfig(text, context="", pasted=False):
    """Check kubeconfig text (see ``parse_kubeconfig``); return its context names."""
    data = parse_kubeconfig(text, context, pasted=pasted)
    return [entry["name"] for entry in data["contexts"] if isinstance(entry, dict) and entry.get("name")]


def _server_kubeconfig(cluster):
    """A kubeconfig for the "server" mode, so every mode goes through the client's own loader."""
    settings = {"server": cluster.server}
    ca_data = getattr(cluster, "ca_data", "") or ""
    if ca_data.strip():
        settings["certificate-authority-data"] = base64.b64encode(ca_data.encode()).decode()
    if getattr(cluster, "insecure", False):
        settings["insecure-skip-tls-verify"] = True
    token = cluster.get_token() or ""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gantry", "cluster": settings}],
        "users": [{"name": "gantry", "user": {"token": token} if token else {}}],
        "contexts": [{"name": "gantry", "context": {"cluster": "gantry", "user": "gantry"}}],
        "current-context": "gantry",
    }


# --- clients --------------------------------------------------------------------------------

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


# --- errors ---------------------------------------------------------------------------------


def _cluster_url(cluster, api=None):
    if api is not None:
        return api.configuration.host
    return getattr(cluster, "server", "") or getattr(cluster, "name", "the cluster")


def _status_of(error):
    """(message, reason, body) of an API error. Only a Kubernetes `Status` object's message is kept:
    any other body (an internal web server's page, when `server` points somewhere else) is never
    echoed into job logs or errors."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return "the server's answer is not a Kubernetes Status (its body is not shown)", error.reason, {}
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


def _call(cluster, fn):
    api = api_client_for(cluster)
    try:
        return fn(api)
    except Exception as error:  # noqa: BLE001 - everything leaves as KubeError
        raise _translate(error, _cluster_url(cluster, api)) from error


# --- REST paths -----------------------------------------------------------------------------


def _resource(api_version, kind):
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        known = ", ".join(f"{k} ({v})" for v, k in sorted(KINDS))
        raise KubeError(f"Gantry does not manage {kind} objects of apiVersion {api_version}; it knows {known}",
                        reason="UnknownKind") from None


def resource_path(api_version, kind, namespace="", name=""):
    """The REST path of a collection (no ``name``) or of one object."""
    plural, namespaced = _resource(api_version, kind)
    path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    if namespaced:
        if not namespace:
            raise KubeError(f"{kind} {name or ''} needs a namespace".replace("  ", " "), reason="BadManifest")
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name, safe='')}"
    return path


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


def _is_missing(error, name):
    """A 404 about the object itself, not about an API the cluster does not serve."""
    if error.status != 404:
        return False
    return error.reason == "NotFound" and f'"{name}" not found' in error.api_message


# --- cluster-level operations ---------------------------------------------------------------


def check_cluster(cluster):
    """Connect and read the version and the namespace count: ``{"git_version", "namespaces"}``."""

    def check(api):
        version = k8s.VersionApi(api).get_code(_request_timeout=TIMEOUT)
        namespaces = k8s.CoreV1Api(api).list_namespace(_request_timeout=TIMEOUT)
        return {"git_version": version.git_version, "namespaces": len(namespaces.items)}

    return _call(cluster, check)


def ensure_namespace(cluster, name, labels=None):
    """Create the namespace or bring its labels up to date (server-side apply)."""
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}
    return apply(cluster, manifest)


def delete_namespace(cluster, name):
    """Delete a namespace and everything in it; True if it existed."""
    return delete(cluster, "v1", "Namespace", "", name)


# --- objects --------------------------------------------------------------------------------


def apply(cluster, manifest, field_manager=FIELD_MANAGER, dry_run=False):
    """Server-side apply of one object of any known kind, taking over conflicting fields.

    Returns the object as the cluster now has it (or would have it, with ``dry_run``).
    """
    if not isinstance(manifest, dict) or not manifest.get("apiVersion") or not manifest.get("kind"):
        raise KubeError("a manifest needs apiVersion and kind", reason="BadManifest")
    metadata = manifest.get("metadata") or {}
    if not metadata.get("name"):
        raise KubeError(f"the {manifest['kind']} manifest has no metadata.name", reason="BadManifest")
    body = {k: v for k, v in manifest.items() if k != "status"}
    body["metadata"] = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA}
    path = resource_path(manifest["apiVersion"], manifest["kind"], metadata.get("namespace", ""), metadata["name"])
    query = [("fieldManager", field_manager), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    return _request(cluster, "PATCH", path, query, body, content_type="application/apply-patch+yaml")


def get(cluster, api_version, kind, namespace, name):
    """The object as a dict, or None if it does not exist."""
    try:
        return _request(cluster, "GET", resource_path(api_version, kind, namespace, name))
    except KubeError as error:
        if _is_missing(error, name):
            return None
        raise


def list_objects(cluster, api_version, kind, namespace, label_selector=""):
    """Objects of one kind in a namespace (``namespace=""`` for cluster-scoped kinds)."""
    query = [("labelSelector", label_selector)] if label_selector else []
    answer = _request(cluster, "GET", resource_path(api_version, kind, namespace), query)
    items = answer.get("items") or []
    for item in items:  # the API leaves these out of list items; callers want whole objects
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
    return items


def patch_merge(cluster, api_version, kind, namespace, name, patch, field_manager=FIELD_MANAGER):
    """A JSON merge patch (RFC 7386): e.g. ``{"spec": {"selector": {"color": "green"}}}``."""
    path = resource_path(api_version, kind, namespace, name)
    return _request(cluster, "PATCH", path, [("fieldManager", field_manager)], patch, content_type="application/merge-patch+json")


def delete(cluster, api_version, kind, namespace, name):
    """Delete one object; True if it existed, False if it was already gone."""
    try:
        _request(cluster, "DELETE", resource_path(api_version, kind, namespace, name), [("propagationPolicy", "Background")])
    except KubeError as error:
        if _is_missing(error, name):
            return False
        raise
    return True


# --- rollouts and health --------------------------------------------------------------------


def _label_selector(selector):
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _pod_problem(pods):
    """The first container problem among the pods, as a sentence, or None."""
    for pod in pods:
        statuses = (pod.get("status") or {}).get("initContainerStatuses", []) + (pod.get("status") or {}).get("containerStatuses", [])
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason, message = waiting.get("reason"), waiting.get("message") or ""
            if reason in _IMAGE_PULL_REASONS:
                return f"image pull error: {message or reason} (container {container.get('name')}, image {container.get('image')})"
            if reason == "CrashLoopBackOff":
                return f"container {container.get('name')} keeps crashing ({container.get('restartCount', 0)} restarts)"
            if reason in _START_REASONS:
                return f"container {container.get('name')} cannot start: {message or reason}"
    return None


def selector_matches(selector, labels):
    """Whether a ``LabelSelector`` (matchLabels, matchExpressions) selects these labels, as the API server decides."""
    labels = labels or {}
    selector = selector or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return False  # an empty selector on a workload selects nothing
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if (operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and key in labels and labels[key] in values) \
                or (operator == "Exists" and key not in labels) or (operator == "DoesNotExist" and key in labels):
            return False
    return True


def pod_restarts(pods):
    """Container restarts of these pods (init containers included), as ``kubectl get pods`` adds them up."""
    total = 0
    for pod in pods:
        status = pod.get("status") or {}
        for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            total += int(container.get("restartCount") or 0)
    return total


def summarize_deployment(deployment, pods):
    """Where a Deployment object's rollout stands, and why it is stuck if it is (no request).

    ``pods`` are the namespace's pods (or any superset of the Deployment's); those its selector
    picks explain a stuck rollout and give the restart count. ``done`` follows ``kubectl rollout
    status``: the controller has seen the latest spec and every replica is updated, ready and
    available.
    """
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    own = [pod for pod in pods if selector_matches(spec.get("selector"), (pod.get("metadata") or {}).get("labels"))]
    summary = {
        "desired": spec.get("replicas", 1),
        "updated": status.get("updatedReplicas", 0),
        "ready": status.get("readyReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "observed_generation": status.get("observedGeneration", 0),
        "generation": (deployment.get("metadata") or {}).get("generation", 0),
        "progressing_reason": progressing.get("reason"),
        "restarts": pod_restarts(own),
    }
    summary["done"] = (
        summary["observed_generation"] >= summary["generation"]
        and summary["updated"] == summary["desired"]
        and status.get("replicas", 0) == summary["desired"]
        and summary["ready"] == summary["desired"]
        and summary["available"] == summary["desired"]
    )
    failure = None
    if not summary["done"]:
        problem = _pod_problem(own)
        replica_failure = conditions.get("ReplicaFailure") or {}
        if progressing.get("reason") == "ProgressDeadlineExceeded" and summary["observed_generation"] >= summary["generation"]:
            failure = "rollout deadline exceeded: " + (progressing.get("message") or "no progress within progressDeadlineSeconds")
            if problem:
                failure += f"; {problem}"
        elif problem:
            failure = problem
        elif replica_failure.get("status") == "True":
            failure = f"cannot create pods: {replica_failure.get('message') or replica_failure.get('reason')}"
    summary["failure"] = failure
    return summary


def deployment_status(cluster, namespace, name):
    """``summarize_deployment`` of one Deployment read now (its pods are listed only when they matter)."""
    deployment = _request(cluster, "GET", resource_path("apps/v1", "Deployment", namespace, name))
    summary = summarize_deployment(deployment, [])
    if not summary["done"]:
        selector = _label_selector((deployment.get("spec") or {}).get("selector") or {})
        if selector:
            summary = summarize_deployment(deployment, list_objects(cluster, "v1", "Pod", namespace, selector))
    return summary


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
        return False, f"HTTP {error.status}: {_short(error.api_message)}"
    return 200 <= status < 400, f"HTTP {status}: {_short(text)}"
