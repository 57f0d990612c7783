"""Running a deployment on its cluster: the code behind the `deployment.apply` job.

`execute` takes a queued deployment to `succeeded` or `failed`:

- rolling: server-side apply of every object in dependency order (config, then workloads, then
  Services, then the rest), then wait for each Deployment's rollout;
- blue-green (API.md, Manifests): the manifest's Deployment becomes `<name>-blue` and
  `<name>-green`; the new release goes to the idle colour, is health-checked through a Service
  of its own (`<service>-<colour>`), and only then does the main Service's selector flip to it,
  in one request. The old colour keeps running for the environment's `blue_green_keep_minutes`
  (see `scale_down_idle_colors`), so a rollback is a selector flip back;
- rollback: the blue-green fast path above when the old colour still runs the release to return
  to, otherwise a normal deploy of that release's manifests.

Crash-safe: the job may be run again for a deployment left `running` by a dead worker.
`mark_running` lets it carry on, every write is a server-side apply (the same object applied
twice is one object), and the colour a blue-green deployment goes to is written on the row
before anything is applied, so a retry goes on with the same colour instead of picking the
other one.

Failures the user can act on (cluster refusals, rollouts that fail, bad manifests, policy) fail
the deployment and the job with one sentence; anything else is a bug and propagates to the job
runner, which records it (the deployment stays `running`, and a retry resumes it).
"""
import copy
import difflib
import logging
import time
from datetime import timedelta

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import kube
from portal.jobs.services import JobFailed

from . import manifests, promotions, rendering
from .choices import BLUE_GREEN, DEPLOY, ROLLBACK, DeploymentState as S
from .models import Deployment

logger = logging.getLogger("gantry.deployments")

COLORS = ("blue", "green")
POLL_SECONDS = 0.25
DEADLINE_GRACE_SECONDS = 30  # our own backstop past progressDeadlineSeconds (the controller reports first)
PROBE_ATTEMPTS = 5
PROBE_INTERVAL_SECONDS = 0.4
POST_SWITCH_PROBES = 3  # probes through the live Service after a switch; a failure switches back
SCALED_FROM_ANNOTATION = "gantry.dev/replicas-before-scale-down"

# Dependency order of server-side apply: what pods need (config, accounts, quotas, policies)
# first, then workloads, then what points at them.
APPLY_ORDER = {
    "ConfigMap": 0, "Secret": 0, "ServiceAccount": 0, "ResourceQuota": 0, "LimitRange": 0, "NetworkPolicy": 0,
    "Role": 0, "RoleBinding": 0, "PersistentVolumeClaim": 0,
    "Deployment": 1, "StatefulSet": 1, "DaemonSet": 1, "Job": 1, "CronJob": 1, "Pod": 1,
    "Service": 2,
}
LATER = 3  # HorizontalPodAutoscaler, Ingress, PodDisruptionBudget...


class DeployFailed(Exception):
    """A deployment failed for a reason the user can act on; ``str()`` says what to do."""


class _Run:
    """What one execution works with."""

    def __init__(self, deployment, log):
        self.deployment = deployment
        self.environment = deployment.environment
        self.service = deployment.service
        self.cluster = self.environment.cluster
        self.namespace = self.environment.namespace
        self.log = log


# --- the job --------------------------------------------------------------------------------


def execute(deployment_id, log):
    """Run a queued (or interrupted, still running) deployment to its end. Raises only JobFailed."""
    before = Deployment.objects.filter(pk=deployment_id).values_list("state", flat=True).first()
    if before is None:
        raise JobFailed(f"deployment #{deployment_id} no longer exists")
    try:
        deployment = promotions.mark_running(deployment_id)
    except promotions.StateError as exc:
        promotions.fail_queued_deployment(deployment_id, str(exc))
        raise JobFailed(str(exc)) from None
    env = deployment.environment
    what = "rollback to" if deployment.kind == ROLLBACK else "deployment of"
    if before == S.RUNNING:
        log.warning(f"deployment #{deployment.pk} was already running (an earlier attempt was interrupted); "
                    "carrying on where it stands: applying again is safe")
    log(f"{what} {deployment.release} ({deployment.image}) to {env.slug}, namespace {env.namespace}, "
        f"strategy {deployment.service.strategy}")
    try:
        if env.cluster_id is None:
            raise DeployFailed(f"environment {env.slug} has no cluster; attach one to the environment and request "
                               "the deployment again")
        outcome = _run(_Run(deployment, log))
    except (kube.KubeError, manifests.ManifestError, DeployFailed) as exc:
        message = _sentence(exc, deployment)
        promotions.finish_deployment(deployment_id, False, error=message)
        raise JobFailed(message) from None
    promotions.finish_deployment(deployment_id, True, color=outcome.get("color", ""),
                                 previous_color=outcome.get("previous_color", ""))
    log(f"deployment #{deployment_id} succeeded" + (f" (live colour {outcome['color']})" if outcome.get("color") else ""))
    return {"deployment": deployment_id, **outcome}


def _sentence(exc, deployment):
    if isinstance(exc, manifests.ManifestError):
        return (f"the manifests of {deployment.service.name} for {deployment.environment.slug} are not valid: {exc}; "
                "fix the service's manifest and request the deployment again")
    if isinstance(exc, kube.KubeError):
        return _kube_sentence(exc, deployment.environment.namespace)
    return str(exc)


def _kube_sentence(exc, namespace):
    if exc.status == 403 and "exceeded quota" in (exc.api_message or ""):
        return (f"quota exceeded: {exc.api_message}; raise the ResourceQuota of namespace {namespace} "
                "or ask for fewer resources")
    return str(exc)


def _run(run):
    deployment = run.deployment
    if deployment.kind == ROLLBACK and run.service.strategy == BLUE_GREEN:
        outcome = _fast_rollback(run)
        if outcome is not None:
            return outcome
    if run.service.strategy == BLUE_GREEN:
        return _deploy_blue_green(run)
    return _deploy_rolling(run)


# --- rendering ------------------------------------------------------------------------------


def _manifest_text(deployment, color=""):
    """The manifests this deployment runs, rendered for its environment.

    A rollback re-applies what ran before: the service's template when it has not changed since
    (so ``${color}`` gets the right colour), else the manifests recorded when that release ran.
    """
    service, release, env = deployment.service, deployment.release, deployment.environment
    if deployment.kind == DEPLOY or rendering.manifest_hash(service, release, env) == deployment.manifest_hash:
        return rendering.render_text(service, release, env, color=color)
    return deployment.rendered_manifest


def _documents(run, color=""):
    """Rendered, checked (schema, policy, the environment's tier) and namespaced objects."""
    documents = manifests.check_rendered(_manifest_text(run.deployment, color))
    problems = manifests.environment_policy_problems(documents, run.environment)
    if problems:
        raise DeployFailed("; ".join(problems))
    for document in documents:
        if kube.KINDS[(document["apiVersion"], document["kind"])][1]:
            document["metadata"]["namespace"] = run.namespace
    return documents


def _apply_order(documents):
    return sorted(documents, key=lambda d: APPLY_ORDER.get(d.get("kind"), LATER))  # stable: manifest order within a rank


def _apply(run, obj, dry_run=False):
    kind, name = obj["kind"], obj["metadata"]["name"]
    try:
        applied = kube.apply(run.cluster, obj, dry_run=dry_run)
    except kube.KubeError as exc:
        where = f"applying {kind} {name} in namespace {run.namespace}"
        raise DeployFailed(f"{_kube_sentence(exc, run.namespace)} ({where})") from None
    if not dry_run:
        run.log(f"applied {kind} {run.namespace}/{name}")
    return applied


# --- rolling --------------------------------------------------------------------------------


def _deploy_rolling(run):
    documents = _documents(run)
    applied = [_apply(run, obj) for obj in _apply_order(documents)]
    for obj in applied:
        if obj.get("kind") == "Deployment":
            _wait_for_rollout(run, obj["metadata"]["name"], (obj.get("spec") or {}).get("progressDeadlineSeconds", 600))
    return {}


def _rollout_timeout(deadline_seconds):
    override = settings.GANTRY_ROLLOUT_TIMEOUT_SECONDS
    if override:
        return float(override)
    return float(deadline_seconds or 600) + DEADLINE_GRACE_SECONDS


def _wait_for_rollout(run, name, deadline_seconds=600):
    """Poll the Deployment until its rollout is done; DeployFailed when it fails or takes too long."""
    limit = _rollout_timeout(deadline_seconds)
    started, last = time.monotonic(), None
    while True:
        status = kube.deployment_status(run.cluster, run.namespace, name)
        line = (f"Deployment {name}: {status['updated']}/{status['desired']} updated, {status['ready']} ready, "
                f"{status['available']} available")
        if line != last:
            run.log(line)
            last = line
        if status["done"]:
            run.log(f"Deployment {name} rolled out")
            return status
        # A failure reported before the controller saw the new spec belongs to the previous rollout.
        if status["failure"] and status["observed_generation"] >= status["generation"]:
            raise DeployFailed(f"{status['failure']} (Deployment {name} in namespace {run.namespace}); "
                               + _hint(status["failure"]))
        if time.monotonic() - started > limit:
            raise DeployFailed(f"rollout deadline exceeded: Deployment {name} in namespace {run.namespace} was not ready "
                               f"after {limit:g} s ({status['ready']}/{status['desired']} ready); "
                               + _hint("rollout deadline exceeded"))
        time.sleep(POLL_SECONDS)


def _hint(failure):
    if failure.startswith("image pull error"):
        return "check that the release's image exists and that the cluster may pull it"
    if "keeps crashing" in failure or "cannot start" in failure:
        return "check the new pods' logs"
    return "check the new pods' events and logs, then deploy a fixed release or roll back"


# --- blue-green -----------------------------------------------------------------------------


def other_color(color):
    return {"blue": "green", "green": "blue"}.get(color, "blue")


def _pair(documents):
    pair = manifests.blue_green_pair(documents)
    if pair is None:
        raise DeployFailed("a blue-green service needs exactly one Deployment and one Service in its manifest; "
                           "fix the service's manifest")
    return pair


def colored_deployment(deployment, color):
    """``<name>-<color>``: the Deployment with ``color`` in its selector and pod labels."""
    colored = copy.deepcopy(deployment)
    metadata = colored["metadata"]
    metadata["name"] = f"{metadata['name']}-{color}"
    metadata["labels"] = {**(metadata.get("labels") or {}), "color": color}
    spec = colored.setdefault("spec", {})
    selector = spec.setdefault("selector", {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "color": color}
    template_metadata = spec.setdefault("template", {}).setdefault("metadata", {})
    template_metadata["labels"] = {**(template_metadata.get("labels") or {}), "color": color}
    return colored


def colored_service(service, color, name=None):
    """The Service selecting one colour: ``name`` (the main Service at the flip) or ``<name>-<color>``."""
    colored = copy.deepcopy(service)
    metadata = colored["metadata"]
    metadata["name"] = name or f"{metadata['name']}-{color}"
    spec = colored.setdefault("spec", {})
    spec["selector"] = {**(spec.get("selector") or {}), "color": color}
    return colored


def _service_port(service):
    ports = (service.get("spec") or {}).get("ports") or []
    return ports[0].get("port") if ports else None


def _live_color(run, service_name):
    live = kube.get(run.cluster, "v1", "Service", run.namespace, service_name)
    color = (((live or {}).get("spec") or {}).get("selector") or {}).get("color")
    return color if color in COLORS else ""


def _record_color(deployment, color, previous):
    """Write the colour this deployment goes to on its row before touching the cluster, for a retry."""
    Deployment.objects.filter(pk=deployment.pk, state=S.RUNNING).update(color=color, previous_color=previous,
                                                                        updated_at=timezone.now())
    deployment.color, deployment.previous_color = color, previous


def _names(text):
    """(Deployment name, Service name, Service document) of a blue-green manifest, without checks."""
    try:
        documents = [d for d in yaml.safe_load_all(text or "") if isinstance(d, dict)]
    except yaml.YAMLError:
        return None
    pair = manifests.blue_green_pair(documents)
    if pair is None:
        return None
    return pair[0]["metadata"]["name"], pair[1]["metadata"]["name"], pair[1]


def _deploy_blue_green(run):
    deployment = run.deployment
    names = _names(_manifest_text(deployment, "blue"))
    if names is None:
        _documents(run, "blue")  # the precise error, when the manifests are not valid at all
        raise DeployFailed("a blue-green service needs exactly one Deployment and one Service in its manifest; "
                           "fix the service's manifest")
    service_name = names[1]
    if deployment.kind == DEPLOY and deployment.color in COLORS:
        color, previous = deployment.color, deployment.previous_color  # chosen by an interrupted attempt
        run.log(f"going on with colour {color}, chosen by the earlier attempt")
    else:
        previous = _live_color(run, service_name)
        color = other_color(previous) if previous else "blue"
        _record_color(deployment, color, previous)
    run.log(f"blue-green: traffic is on {previous or 'no colour yet'}; deploying to {color}")
    documents = _documents(run, color)
    workload, service = _pair(documents)
    for obj in _apply_order([d for d in documents if d is not workload and d is not service]):
        _apply(run, obj)
    colored = _apply(run, colored_deployment(workload, color))
    probe = _apply(run, colored_service(service, color))
    _wait_for_rollout(run, colored["metadata"]["name"], colored["spec"].get("progressDeadlineSeconds", 600))
    _health_check(run, probe["metadata"]["name"], _service_port(service), previous)
    _apply(run, colored_service(service, color, name=service["metadata"]["name"]))
    run.log(f"traffic switched: Service {service['metadata']['name']} now selects color={color}"
            + (f" (was {previous}); {previous} keeps running for {run.environment.blue_green_keep_minutes} min "
               "for a fast rollback" if previous and previous != color else ""))
    _verify_after_switch(run, service, color, previous)
    return {"color": color, "previous_color": previous if previous != color else ""}


def _verify_after_switch(run, service, color, previous):
    """Probe through the live Service once traffic moved; if it fails, flip traffic back at once."""
    name = service["metadata"]["name"]
    try:
        _health_check(run, name, _service_port(service), previous, attempts=POST_SWITCH_PROBES)
    except DeployFailed as failure:
        if not previous or previous == color:
            raise
        _apply(run, colored_service(service, previous, name=name))
        run.log.error(f"traffic switched back: Service {name} selects color={previous} again")
        raise DeployFailed(f"the health check failed after the switch to {color}, so traffic went back to "
                           f"{previous}: {failure}") from None


def _health_check(run, service_name, port, previous, attempts=PROBE_ATTEMPTS):
    path = run.service.health_path or "/"
    detail = ""
    for attempt in range(1, attempts + 1):
        try:
            ok, detail = kube.probe_service(run.cluster, run.namespace, service_name, port, path)
        except kube.KubeError as exc:
            raise DeployFailed(f"health check failed on {service_name}: {_kube_sentence(exc, run.namespace)}") from None
        if ok:
            run.log(f"health check GET {path} through Service {service_name}: {detail}")
            return
        run.log.warning(f"health check GET {path} through Service {service_name} failed "
                        f"(attempt {attempt} of {attempts}): {detail}")
        if attempt < attempts:
            time.sleep(PROBE_INTERVAL_SECONDS)
    stays = f"traffic stays on {previous}" if previous else "no traffic was switched"
    raise DeployFailed(f"health check failed on {service_name}: GET {path} answered {detail}; {stays}. "
                       "Check the new pods' logs and the service's health path")


def _is_ready(obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = spec.get("replicas", 1)
    return (desired > 0 and status.get("observedGeneration", 0) >= (obj.get("metadata") or {}).get("generation", 0)
            and all(status.get(k, 0) == desired
                    for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")))


def _images(obj):
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {c.get("image") for c in pod.get("containers") or []}


def _fast_rollback(run):
    """Flip traffic back to the colour that still runs the release to return to; None when it cannot.

    Only cheap reads come before the flip: one GET of the colour's Deployment and one health
    check. The manifests are not rendered or validated: nothing is applied.
    """
    deployment = run.deployment
    color = deployment.color
    names = _names(deployment.rendered_manifest)
    if color not in COLORS or names is None:
        return None
    workload_name, service_name, service = names
    name = f"{workload_name}-{color}"
    live = kube.get(run.cluster, "apps/v1", "Deployment", run.namespace, name)
    if live is None:
        run.log(f"Deployment {name} is gone; deploying {deployment.release} again instead of switching back")
        return None
    if deployment.image not in _images(live):
        run.log(f"Deployment {name} no longer runs {deployment.image}; deploying {deployment.release} again "
                "instead of switching back")
        return None
    attempts = 1
    if not _is_ready(live):
        replicas = (live.get("spec") or {}).get("replicas", 1)
        if replicas == 0:
            recorded = ((live.get("metadata") or {}).get("annotations") or {}).get(SCALED_FROM_ANNOTATION, "")
            wanted = int(recorded) if recorded.isdigit() and int(recorded) > 0 else (run.environment.replicas or 1)
            kube.patch_merge(run.cluster, "apps/v1", "Deployment", run.namespace, name,
                             {"metadata": {"annotations": {SCALED_FROM_ANNOTATION: None}}, "spec": {"replicas": wanted}})
            run.log(f"scaled Deployment {name} back up to {wanted} replica(s)")
        _wait_for_rollout(run, name, (live.get("spec") or {}).get("progressDeadlineSeconds", 600))
        attempts = PROBE_ATTEMPTS
    _health_check(run, f"{service_name}-{color}", _service_port(service), deployment.previous_color, attempts)
    kube.patch_merge(run.cluster, "v1", "Service", run.namespace, service_name, {"spec": {"selector": {"color": color}}})
    run.log(f"traffic switched back: Service {service_name} now selects color={color}"
            + (f" (was {deployment.previous_color})" if deployment.previous_color else ""))
    return {"color": color, "previous_color": deployment.previous_color if deployment.previous_color != color else ""}


# --- the idle colour ------------------------------------------------------------------------


def scale_down_idle_colors(now=None):
    """Periodic: scale the idle colour of blue-green services to 0 once its keep time is over.

    The idle colour is what a fast rollback flips back to, so it keeps running for the
    environment's ``blue_green_keep_minutes`` after the live deployment finished, and is left
    alone while any deployment or rollback of the service there is under way. The check and the
    scale-down happen under the environment's row lock, the lock every deployment takes to
    start, so no deployment can start in between. Returns how many Deployments were scaled down.
    """
    pairs = (Deployment.objects.filter(service__strategy=BLUE_GREEN, state=S.SUCCEEDED)
             .order_by().values_list("service_id", "environment_id").distinct())
    now = now or timezone.now()
    return sum(_scale_down_idle_color(service_id, environment_id, now) for service_id, environment_id in pairs)


def _scale_down_idle_color(service_id, environment_id, now):
    from environments.models import Environment
    from portal.audit.services import record

    with transaction.atomic():
        env = Environment.objects.select_for_update(of=("self",)).select_related("cluster").get(pk=environment_id)
        live = promotions.live_deployment(service_id, environment_id)
        if live is None or live.color not in COLORS or live.finished_at is None or env.cluster_id is None:
            return 0
        if live.finished_at > now - timedelta(minutes=env.blue_green_keep_minutes):
            return 0
        others = Deployment.objects.filter(service_id=service_id, environment_id=environment_id)
        if others.filter(state__in=[S.QUEUED, S.RUNNING]).exists() or others.filter(
                kind=ROLLBACK, state__in=[S.PENDING_APPROVAL, S.APPROVED]).exists():
            return 0
        names = _names(live.rendered_manifest)
        name = f"{names[0] if names else live.service.name}-{other_color(live.color)}"
        try:
            idle = kube.get(env.cluster, "apps/v1", "Deployment", env.namespace, name)
            replicas = ((idle or {}).get("spec") or {}).get("replicas", 0)
            if not replicas:
                return 0
            kube.patch_merge(env.cluster, "apps/v1", "Deployment", env.namespace, name,
                             {"metadata": {"annotations": {SCALED_FROM_ANNOTATION: str(replicas)}}, "spec": {"replicas": 0}})
        except kube.KubeError as exc:
            logger.warning("could not scale down %s in %s: %s", name, env.slug, exc)
            return 0
        record("deployment.idle_color_scaled_down", actor_name="gantry-scheduler", target=live, environment=env,
               changes={"replicas": [replicas, 0]}, detail={"deployment": name, "keep_minutes": env.blue_green_keep_minutes})
    return 1


# --- dry-run and diff for the approval page -------------------------------------------------

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


def _dump(obj):
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines() if obj else []


def _desired_objects(deployment):
    """What running this deployment would apply, in order (for blue-green: the idle colour and the flip)."""
    run = _Run(deployment, lambda message: None)
    if deployment.service.strategy != BLUE_GREEN:
        return _apply_order(_documents(run))
    names = _names(_manifest_text(deployment, "blue"))
    if names is None:
        raise DeployFailed("a blue-green service needs exactly one Deployment and one Service in its manifest")
    if deployment.kind == ROLLBACK and deployment.color in COLORS:
        color = deployment.color
    else:
        live = _live_color(run, names[1])
        color = other_color(live) if live else "blue"
    documents = _documents(run, color)
    workload, service = _pair(documents)
    rest = _apply_order([d for d in documents if d is not workload and d is not service])
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
        problems.append(_sentence(exc, deployment))
        desired_objects = []
    for obj in desired_objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            desired = kube.apply(env.cluster, obj, dry_run=True)
            live = kube.get(env.cluster, obj["apiVersion"], kind, obj["metadata"].get("namespace", ""), name)
        except kube.KubeError as exc:
            problems.append(f"{kind} {name}: {_kube_sentence(exc, env.namespace)}")
            continue
        before, after = _dump(comparable(live)) if live else [], _dump(comparable(desired))
        if live is None:
            action = "create"
        else:
            action = "unchanged" if before == after else "update"
        diff = list(difflib.unified_diff(before, after, fromfile=f"live {kind}/{name}" if live else "/dev/null",
                                         tofile=f"desired {kind}/{name}", lineterm="")) if action != "unchanged" else []
        objects.append({"kind": kind, "name": name, "action": action, "diff": diff})
    return {"ok": not problems, "problems": problems, "objects": objects}
