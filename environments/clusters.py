"""Clusters: registering, changing, checking and removing the Kubernetes clusters environments run on.
Every change goes through these functions (pages, API, commands)."""
import os

from django.db import transaction

from portal import kube
from portal.accounts import policies
from portal.audit.writes import change_audited, create_audited, delete_audited
from portal.errors import Conflict, InvalidInput, deny_if
from portal.jobs.services import enqueue_job
from portal.safe_yaml import MAX_BYTES
from portal.validation import shown

from .models import Cluster
from .schemas import ClusterChange, ClusterCreate, server_problem

CLUSTER_FIELDS = ("name", "mode", "server", "insecure", "kubeconfig_path", "context", "is_sandbox")


def _cluster_mode(data, instance):
    """The connection mode the given fields ask for (the instance's when none is given)."""
    if data.get("in_cluster"):
        return "in_cluster"
    for field, mode in (("kubeconfig", "kubeconfig"), ("kubeconfig_path", "kubeconfig_path"), ("server", "server")):
        if data.get(field) not in (None, ""):
            return mode
    return instance.mode if instance is not None else None


def _clean_server(data, clean, errors, instance):
    server = data.get("server", instance.server if instance else "")
    if server_problem(server):
        errors.append(server_problem(server))
    clean["server"] = server
    clean["insecure"] = bool(data.get("insecure", instance.insecure if instance else False))
    if data.get("ca_data") is not None:
        clean["ca_data"] = data["ca_data"]
    if "token" in data:
        clean["token"] = data.get("token") or ""


def _clean_pasted_kubeconfig(data, clean, errors):
    text = data.get("kubeconfig")
    if text is not None:
        try:
            kube.validate_kubeconfig(text, clean["context"], pasted=True)
        except ValueError as exc:
            errors.append(f"kubeconfig: {exc}")
        clean["kubeconfig"] = text


def _clean_kubeconfig_path(data, clean, errors, instance):
    path = data.get("kubeconfig_path", instance.kubeconfig_path if instance else "")
    clean["kubeconfig_path"] = path
    text = None
    try:  # one answer for missing, unreadable or not a file: the form is no probe of the host's files
        if not isinstance(path, str) or not os.path.isabs(path) or not os.path.isfile(path):
            raise OSError("not a file")
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError):
        errors.append(f"kubeconfig_path: cannot read '{shown(path)}' on the Gantry host (missing, unreadable, "
                      "or not an absolute path to a file)")
    if text is not None:
        try:
            kube.validate_kubeconfig(text, clean["context"])
        except ValueError as exc:
            errors.append(f"kubeconfig_path: {exc}")


def _clean_cluster(data, instance=None):
    """The declared schema's fields (ClusterCreate, ClusterChange), then what they do not say alone: the
    connection mode the fields (or the stored cluster) ask for, and the kubeconfig checked with its context."""
    data = (ClusterChange if instance else ClusterCreate).validated(data)
    errors = []
    clean = {"name": data.get("name") or instance.name}
    mode = _cluster_mode(data, instance)
    if mode is None:
        raise InvalidInput("give one of: server (API URL), kubeconfig (text), kubeconfig_path, or in_cluster: true")
    clean["mode"] = mode
    clean["context"] = data.get("context", instance.context if instance else "") or ""
    if mode == "server":
        _clean_server(data, clean, errors, instance)
    elif mode == "kubeconfig":
        _clean_pasted_kubeconfig(data, clean, errors)
    elif mode == "kubeconfig_path":
        _clean_kubeconfig_path(data, clean, errors, instance)
    if errors:
        raise InvalidInput(errors)
    return clean


def _cluster_snapshot(cluster):
    return {field: getattr(cluster, field) for field in CLUSTER_FIELDS} | {
        "credentials": "***" if (cluster.token_encrypted or cluster.kubeconfig_encrypted) else ""
    }


def _apply_cluster(cluster, clean):
    for field in ("name", "mode", "server", "insecure", "kubeconfig_path", "context", "ca_data", "is_sandbox"):
        if field in clean:
            setattr(cluster, field, clean[field])
    if clean.get("mode") != "server":
        cluster.server = clean.get("server", "") if clean.get("mode") == "server" else ""
        cluster.token_encrypted = ""
        cluster.ca_data = ""
    if clean.get("mode") not in ("kubeconfig",):
        cluster.kubeconfig_encrypted = ""
    if clean.get("mode") != "kubeconfig_path":
        cluster.kubeconfig_path = ""
    if "token" in clean:
        cluster.set_token(clean["token"])
    if "kubeconfig" in clean:
        cluster.set_kubeconfig(clean["kubeconfig"])


def create_cluster(user, data, request=None, *, is_sandbox=False):
    """`is_sandbox`: the cluster `manage.py demo` runs (commands only; neither page nor API sets it)."""
    deny_if(policies.admin_refusal(user, "register clusters"), "cluster.create", user=user, request=request)
    clean = _clean_cluster(data) | {"is_sandbox": is_sandbox}
    if Cluster.objects.filter(name=clean["name"]).exists():
        raise InvalidInput(f"name: a cluster named '{clean['name']}' already exists")
    cluster = Cluster()
    _apply_cluster(cluster, clean)
    with transaction.atomic():
        create_audited(cluster, "cluster.create", snapshot=_cluster_snapshot, actor=user, request=request,
                       taken=f"name: a cluster named '{clean['name']}' already exists")
        check_cluster(user, cluster, request=request)
    return cluster


def update_cluster(user, cluster, data, request=None):
    deny_if(policies.admin_refusal(user, "change clusters"), "cluster.update", user=user, request=request,
            target=cluster)
    clean = _clean_cluster(data, instance=cluster)
    if Cluster.objects.filter(name=clean["name"]).exclude(pk=cluster.pk).exists():
        raise InvalidInput(f"name: a cluster named '{clean['name']}' already exists")
    rotated = "token" in clean or "kubeconfig" in clean
    return change_audited(cluster, lambda row: _apply_cluster(row, clean), "cluster.update",
                          snapshot=_cluster_snapshot, actor=user, request=request,
                          replaced=("credentials",) if rotated else ())


def delete_cluster(user, cluster, request=None):
    deny_if(policies.admin_refusal(user, "remove clusters"), "cluster.delete", user=user, request=request,
            target=cluster)
    if cluster.environments.exists():
        names = ", ".join(cluster.environments.values_list("slug", flat=True)[:5])
        raise Conflict(f"cluster '{cluster.name}' still hosts environments ({names}); move or delete them first")
    delete_audited(cluster, "cluster.delete", snapshot=_cluster_snapshot, actor=user, request=request)


def check_cluster(user, cluster, request=None):
    """Queue a connectivity check of the cluster (version and namespaces)."""
    deny_if(policies.admin_refusal(user, "check clusters"), "cluster.check", user=user, request=request,
            target=cluster)
    with transaction.atomic():
        return enqueue_job("cluster.check", target=cluster, requested_by=user, request=request)


def default_cluster():
    """Where an environment goes when no cluster is named: the sandbox if there is one, else the first."""
    return Cluster.objects.order_by("-is_sandbox", "name").first()
