"""Running a deployment on its cluster: the code behind the `deployment.apply` job.

`execute` takes a queued deployment to `succeeded` or `failed`:

- rolling: server-side apply of every object in dependency order (config, then workloads, then
  Services, then the rest), then wait for each Deployment's rollout;
- blue-green (see `bluegreen`): the new release goes to the idle colour, is health-checked
  through a Service of its own (`<service>-<colour>`), and only then does the main Service's
  selector flip to it, in one request. The old colour keeps running for the environment's
  `blue_green_keep_minutes` (see `idle_colors`), so a rollback is a selector flip back;
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
import time

from django.conf import settings
from django.utils import timezone

from environments.backups.guard import backup_before_deploy
from portal import kube
from portal.jobs.services import JobFailed

from . import manifests, worker_callbacks
from .apply import DeployFailed, Run, apply_object, apply_order, documents_of, kube_sentence, manifest_text, sentence
from .bluegreen import (
    COLORS,
    PAIR_NEEDED,
    SCALED_FROM_ANNOTATION,
    colored_deployment,
    colored_name,
    colored_service,
    live_color,
    manifest_names,
    other_color,
    require_pair,
    service_port,
)
from .choices import BLUE_GREEN, DEPLOY, ROLLBACK
from .choices import DeploymentState as S
from .models import Deployment
from .state import StateError

POLL_SECONDS = 0.25
DEADLINE_GRACE_SECONDS = 30  # our own backstop past progressDeadlineSeconds (the controller reports first)
PROBE_ATTEMPTS = 5
PROBE_INTERVAL_SECONDS = 0.4
POST_SWITCH_PROBES = 3  # probes through the live Service after a switch; a failure switches back


def execute(deployment_id, log):
    """Run a queued (or interrupted, still running) deployment to its end. Raises only JobFailed."""
    before = Deployment.objects.filter(pk=deployment_id).values_list("state", flat=True).first()
    if before is None:
        raise JobFailed(f"deployment #{deployment_id} no longer exists")
    try:
        deployment = worker_callbacks.mark_running(deployment_id)
    except StateError as exc:
        worker_callbacks.fail_queued_deployment(deployment_id, str(exc))
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
        if deployment.kind != ROLLBACK and before != S.RUNNING:
            refusal = backup_before_deploy(env, log)
            if refusal:
                raise DeployFailed(refusal)
        outcome = _run(Run(deployment, log))
    except (kube.KubeError, manifests.ManifestError, DeployFailed) as exc:
        message = sentence(exc, deployment)
        worker_callbacks.finish_deployment(deployment_id, False, error=message)
        raise JobFailed(message) from None
    worker_callbacks.finish_deployment(deployment_id, True, color=outcome.get("color", ""),
                                 previous_color=outcome.get("previous_color", ""))
    log(f"deployment #{deployment_id} succeeded" + (f" (live colour {outcome['color']})" if outcome.get("color") else ""))
    return {"deployment": deployment_id, **outcome}


def _run(run):
    deployment = run.deployment
    if deployment.kind == ROLLBACK and run.service.strategy == BLUE_GREEN:
        outcome = _fast_rollback(run)
        if outcome is not None:
            return outcome
    if run.service.strategy == BLUE_GREEN:
        return _deploy_blue_green(run)
    return _deploy_rolling(run)


def _deploy_rolling(run):
    documents = documents_of(run)
    applied = [apply_object(run, obj) for obj in apply_order(documents)]
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


def _record_color(deployment, color, previous):
    """Write the colour this deployment goes to on its row before touching the cluster, for a retry."""
    Deployment.objects.filter(pk=deployment.pk, state=S.RUNNING).update(color=color, previous_color=previous,
                                                                        updated_at=timezone.now())
    deployment.color, deployment.previous_color = color, previous


def _deploy_blue_green(run):
    deployment = run.deployment
    names = manifest_names(manifest_text(deployment, "blue"))
    if names is None:
        documents_of(run, "blue")  # the precise error, when the manifests are not valid at all
        raise DeployFailed(PAIR_NEEDED)
    service_name = names[1]
    if deployment.kind == DEPLOY and deployment.color in COLORS:
        color, previous = deployment.color, deployment.previous_color  # chosen by an interrupted attempt
        run.log(f"going on with colour {color}, chosen by the earlier attempt")
    else:
        previous = live_color(run.cluster, run.namespace, service_name)
        color = other_color(previous) if previous else "blue"
        _record_color(deployment, color, previous)
    run.log(f"blue-green: traffic is on {previous or 'no colour yet'}; deploying to {color}")
    documents = documents_of(run, color)
    workload, service = require_pair(documents)
    for obj in apply_order([d for d in documents if d is not workload and d is not service]):
        apply_object(run, obj)
    colored = apply_object(run, colored_deployment(workload, color))
    probe = apply_object(run, colored_service(service, color))
    _wait_for_rollout(run, colored["metadata"]["name"], colored["spec"].get("progressDeadlineSeconds", 600))
    _health_check(run, probe["metadata"]["name"], service_port(service), previous)
    apply_object(run, colored_service(service, color, name=service["metadata"]["name"]))
    run.log(f"traffic switched: Service {service['metadata']['name']} now selects color={color}"
            + (f" (was {previous}); {previous} keeps running for {run.environment.blue_green_keep_minutes} min "
               "for a fast rollback" if previous and previous != color else ""))
    _verify_after_switch(run, service, color, previous)
    return {"color": color, "previous_color": previous if previous != color else ""}


def _verify_after_switch(run, service, color, previous):
    """Probe through the live Service once traffic moved; if it fails, flip traffic back at once."""
    name = service["metadata"]["name"]
    try:
        _health_check(run, name, service_port(service), previous, attempts=POST_SWITCH_PROBES)
    except DeployFailed as failure:
        if not previous or previous == color:
            raise
        apply_object(run, colored_service(service, previous, name=name))
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
            raise DeployFailed(f"health check failed on {service_name}: {kube_sentence(exc, run.namespace)}") from None
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
    names = manifest_names(deployment.rendered_manifest)
    if color not in COLORS or names is None:
        return None
    workload_name, service_name, service = names
    name = colored_name(workload_name, color)
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
    _health_check(run, colored_name(service_name, color), service_port(service), deployment.previous_color, attempts)
    kube.patch_merge(run.cluster, "v1", "Service", run.namespace, service_name, {"spec": {"selector": {"color": color}}})
    run.log(f"traffic switched back: Service {service_name} now selects color={color}"
            + (f" (was {deployment.previous_color})" if deployment.previous_color else ""))
    return {"color": color, "previous_color": deployment.previous_color if deployment.previous_color != color else ""}
