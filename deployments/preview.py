"""The dry run for the approval page: what a deployment would apply, and its diff against the cluster."""
import copy
import difflib

import yaml
from django.db import transaction

from portal import kube
from portal.audit.services import record

from . import manifests
from .apply import DeployFailed, Run, apply_order, documents_of, kube_sentence, manifest_text, sentence
from .bluegreen import (
    COLORS,
    PAIR_NEEDED,
    colored_deployment,
    colored_service,
    live_color,
    manifest_names,
    other_color,
    require_pair,
)
from .choices import BLUE_GREEN, ROLLBACK
from .facts import dry_run_shown, dry_run_summary

_STRIPPED_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
_CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


def comparable(obj):
    """The object without what the server owns, for a diff a reviewer can read."""
    obj = copy.deepcopy(obj or {})
    obj.pop("status", None)
    metadata = obj.get("metadata") or {}
    for field in _STRIPPED_METADATA:
        metadata.pop(field, None)
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if not k.startswith("kubectl.kubernetes.io/") and k not in _CONTROLLER_ANNOTATIONS}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    if obj.get("kind") == "Secret":  # never show a Secret's values, live or desired
        for field in ("data", "stringData"):
            if isinstance(obj.get(field), dict):
                obj[field] = {key: "***" for key in obj[field]}
    return obj


def _without_allocations(desired, manifest, live):
    """A new Service's address is picked by the API server on each dry run: unless the manifest asks
    for one, leave it out of the diff, so the same change reads (and is recorded) the same each time."""
    if live is not None or manifest.get("kind") != "Service" or "clusterIP" in (manifest.get("spec") or {}):
        return desired
    desired = copy.deepcopy(desired)
    for field in ("clusterIP", "clusterIPs"):
        (desired.get("spec") or {}).pop(field, None)
    return desired


def _dump(obj):
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines() if obj else []


def _desired_objects(deployment):
    """What running this deployment would apply, in order (for blue-green: the idle colour and the flip)."""
    run = Run(deployment, lambda message: None)
    if deployment.service.strategy != BLUE_GREEN:
        return apply_order(documents_of(run))
    names = manifest_names(manifest_text(deployment, "blue"))
    if names is None:
        raise DeployFailed(PAIR_NEEDED)
    if deployment.kind == ROLLBACK and deployment.color in COLORS:
        color = deployment.color
    else:
        live = live_color(run.cluster, run.namespace, names[1])
        color = other_color(live) if live else "blue"
    documents = documents_of(run, color)
    workload, service = require_pair(documents)
    rest = apply_order([d for d in documents if d is not workload and d is not service])
    return rest + [colored_deployment(workload, color), colored_service(service, color),
                   colored_service(service, color, name=service["metadata"]["name"])]


def preview(deployment):
    """A server-side dry run of what this deployment would apply, and a diff against the cluster.

    Returns ``{"ok", "problems": [sentences], "objects": [{"kind", "name", "action", "diff"}]}``;
    cluster errors and invalid manifests become problems, never exceptions.
    """
    problems, objects = [], []
    env = deployment.environment
    try:
        if env.cluster_id is None:
            raise DeployFailed(f"environment {env.slug} has no cluster")
        desired_objects = _desired_objects(deployment)
    except manifests.ManifestError as exc:
        problems.extend(manifests.format_problem(p) for p in exc.problems)
        desired_objects = []
    except (kube.KubeError, DeployFailed) as exc:
        problems.append(sentence(exc, deployment))
        desired_objects = []
    for obj in desired_objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            desired = kube.apply(env.cluster, obj, dry_run=True)
            live = kube.get(env.cluster, obj["apiVersion"], kind, obj["metadata"].get("namespace", ""), name)
        except kube.KubeError as exc:
            problems.append(f"{kind} {name}: {kube_sentence(exc, env.namespace)}")
            continue
        before, after = _dump(comparable(live)) if live else [], _dump(comparable(_without_allocations(desired, obj, live)))
        action = "create" if live is None else "unchanged" if before == after else "update"
        diff = list(difflib.unified_diff(before, after, fromfile=f"live {kind}/{name}" if live else "/dev/null",
                                         tofile=f"desired {kind}/{name}", lineterm="")) if action != "unchanged" else []
        objects.append({"kind": kind, "name": name, "action": action, "diff": diff})
    return {"ok": not problems, "problems": problems, "objects": objects}


def show_dry_run(user, deployment, request=None):
    """The dry run for `user`'s approval page, recorded as `deployment.dry_run` (what it showed, see
    facts.dry_run_summary): each decision then records the dry run its approver had in front of them."""

    result = preview(deployment)
    summary = dry_run_summary(deployment, result)
    if dry_run_shown(deployment, user).get("sha256") == summary["sha256"]:
        return result  # the same dry run this person was already shown (a reload): recorded once
    with transaction.atomic():
        record("deployment.dry_run", actor=user, request=request, target=deployment, environment=deployment.environment,
               outcome="success" if result["ok"] else "failure", detail=summary)
    return result
