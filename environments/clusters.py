"""Clusters: registering, changing, checking and removing the Kubernetes clusters environments run on.
Every change goes through these functions (pages, API, commands)."""
import os

from django.db import transaction

from portal import kube
from portal.accounts import policies
from portal.audit.services import diff, record
from portal.errors import Conflict, InvalidInput, deny
from portal.jobs.services import enqueue_job
from portal.validation import check_dns_label, check_text, shown

from .models import Cluster

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
    if not isinstance(server, str) or not server.startswith(("http://", "https://")):
        errors.append(f"server: '{server}' is not an http(s) URL of a Kubernetes API server (e.g. https://10.0.0.1:6443)")
    clean["server"] = server
    clean["insecure"] = bool(data.get("insecure", instance.insecure if instance else False))
    ca = data.get("ca_data")
    if ca not in (None, "") and (not isinstance(ca, str) or "BEGIN CERTIFICATE" not in ca):
        errors.append("ca_data: must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
    if ca is not None:
        clean["ca_data"] = ca or ""
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
    from portal.safe_yaml import MAX_BYTES

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


def _clean_cluster(data, errors, instance=None):
    clean = {}
    name = data.get("name", instance.name if instance else None)
    clean["name"] = check_dns_label(name, "name", errors)
    mode = _cluster_mode(data, instance)
    if mode is None:
        errors.append("give one of: server (API URL), kubeconfig (text), kubeconfig_path, or in_cluster: true")
        return clean
    clean["mode"] = mode
    clean["context"] = check_text(data.get("context", instance.context if instance else ""), "context", errors,
                                  required=False) or ""
    if mode == "server":
        _clean_server(data, clean, errors, instance)
    elif mode == "kubeconfig":
        _clean_pasted_kubeconfig(data, clean, errors)
    elif mode == "kubeconfig_path":
        _clean_kubeconfig_path(data, clean, errors, instance)
    if "is_sandbox" in data:
        clean["is_sandbox"] = bool(data["is_sandbox"])
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


def create_cluster(user, data, request=None):
    if not policies.can_manage_clusters(user):
        deny("cluster.create", user=user, request=request, reason="only an admin can register clusters")
    errors = []
    clean = _clean_cluster(data, errors)
    if errors:
        raise InvalidInput(errors)
    if Cluster.objects.filter(name=clean["name"]).exists():
        raise InvalidInput(f"name: a cluster named '{clean['name']}' already exists")
    cluster = Cluster()
    _apply_cluster(cluster, clean)
    with transaction.atomic():
        cluster.save()
        record("cluster.create", actor=user, request=request, target=cluster,
               changes=diff({}, _cluster_snapshot(cluster)))
        check_cluster(user, cluster, request=request)
    return cluster


def update_cluster(user, cluster, data, request=None):
    if not policies.can_manage_clusters(user):
        deny("cluster.update", user=user, request=request, target=cluster, reason="only an admin can change clusters")
    errors = []
    clean = _clean_cluster(data, errors, instance=cluster)
    if errors:
        raise InvalidInput(errors)
    if Cluster.objects.filter(name=clean["name"]).exclude(pk=cluster.pk).exists():
        raise InvalidInput(f"name: a cluster named '{clean['name']}' already exists")
    before = _cluster_snapshot(cluster)
    rotated = "token" in clean or "kubeconfig" in clean
    _apply_cluster(cluster, clean)
    with transaction.atomic():
        cluster.save()
        changes = diff(before, _cluster_snapshot(cluster))
        if rotated:
            changes["credentials"] = ["***", "*** (replaced)"]
        record("cluster.update", actor=user, request=request, target=cluster, changes=changes)
    return cluster


def delete_cluster(user, cluster, request=None):
    if not policies.can_manage_clusters(user):
        deny("cluster.delete", user=user, request=request, target=cluster, reason="only an admin can remove clusters")
    if cluster.environments.exists():
        names = ", ".join(cluster.environments.values_list("slug", flat=True)[:5])
        raise Conflict(f"cluster '{cluster.name}' still hosts environments ({names}); move or delete them first")
    with transaction.atomic():
        record("cluster.delete", actor=user, request=request, target=cluster, changes=diff(_cluster_snapshot(cluster), {}))
        cluster.delete()


def check_cluster(user, cluster, request=None):
    """Queue a connectivity check of the cluster (version and namespaces)."""
    if not policies.can_manage_clusters(user):
        deny("cluster.check", user=user, request=request, target=cluster, reason="only an admin can check clusters")
    with transaction.atomic():
        return enqueue_job("cluster.check", target=cluster, requested_by=user, request=request)


def default_cluster():
    """Where an environment goes when no cluster is named: the sandbox if there is one, else the first."""
    return Cluster.objects.order_by("-is_sandbox", "name").first()
