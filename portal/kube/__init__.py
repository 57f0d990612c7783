"""The one gateway to Kubernetes. The rest of Gantry calls these functions, never the client.

Each function takes a ``cluster`` (the Cluster model, or anything with the same attributes:
``mode``, ``server``, ``get_token()``, ``ca_data``, ``insecure``, ``kubeconfig_path``,
``get_kubeconfig()``, ``context``, ``name``) and works on plain dicts, so callers never handle
client models. Every failure, whatever layer it comes from (the API's ``Status``, urllib3,
kubeconfig loading), leaves as a ``KubeError`` whose text tells the user what to do next.

Objects are written with server-side apply, so writing the same manifest twice is a no-op
and a retried job is safe.

One module a job: ``kubeconfig`` (reading and checking kubeconfigs), ``clients`` (a cached client per
cluster and a call through it), ``errors`` (KubeError and the translation of failures),
``resources`` (the kinds and their REST paths), ``objects`` (apply, get, list, patch, delete),
``rollouts`` (where a Deployment's rollout stands), ``service_proxy`` (an HTTP probe of a Service),
``timeouts``. Callers import ``portal.kube`` and use the names below.
"""
from .clients import api_client_for, forget_clients
from .errors import KubeError
from .kubeconfig import (
    HOST_REACHING_CLUSTER_KEYS, HOST_REACHING_USER_KEYS, parse_kubeconfig, read_kubeconfig_file, validate_kubeconfig,
)
from .objects import (
    FIELD_MANAGER, apply, check_cluster, delete, delete_namespace, ensure_namespace, get, list_objects, patch_merge,
)
from .resources import KINDS, resource_path
from .rollouts import deployment_status, pod_restarts, selector_matches, summarize_deployment
from .service_proxy import probe_service
from .timeouts import CONNECT_TIMEOUT, POOL_SIZE, READ_TIMEOUT, TIMEOUT

__all__ = [
    "CONNECT_TIMEOUT", "FIELD_MANAGER", "HOST_REACHING_CLUSTER_KEYS", "HOST_REACHING_USER_KEYS", "KINDS", "POOL_SIZE",
    "READ_TIMEOUT", "TIMEOUT", "KubeError", "api_client_for", "apply", "check_cluster", "delete", "delete_namespace",
    "deployment_status", "ensure_namespace", "forget_clients", "get", "list_objects", "parse_kubeconfig",
    "patch_merge", "pod_restarts", "probe_service", "read_kubeconfig_file", "resource_path", "selector_matches",
    "summarize_deployment", "validate_kubeconfig",
]
