"""Background work for clusters and environments (registered job kinds)."""
from django.db import transaction
from django.utils import timezone

from portal import kube
from portal.audit.services import record
from portal.jobs.services import JobFailed, job_kind

from .choices import EnvironmentStatus
from .models import Cluster, Environment
from .lifecycle import finish_teardown, set_environment_status


@job_kind("cluster.check", queue="default", title="Check cluster connection")
def check_cluster_job(job, log):
    cluster = Cluster.objects.filter(pk=job.target_id).first()
    if cluster is None:
        raise JobFailed("the cluster was removed before the check ran")
    log(f"connecting to {cluster.name} ({cluster.location})")
    try:
        info = kube.check_cluster(cluster)
        ok, error = True, ""
    except (kube.KubeError, ValueError, OSError) as exc:
        info, ok, error = {}, False, str(exc)
    with transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(
            last_checked_at=timezone.now(), last_check_ok=ok, last_error=error,
            server_version=info.get("git_version", cluster.server_version),
        )
        record("cluster.checked", actor_name="gantry-worker", target=cluster,
               outcome="success" if ok else "failure", detail={"version": info.get("git_version", ""), "error": error})
    if not ok:
        raise JobFailed(error)
    log(f"reachable: Kubernetes {info.get('git_version')}, {info.get('namespaces')} namespace(s)")
    return info


@job_kind("environment.provision", queue="default", title="Provision environment")
def provision_environment_job(job, log):
    env = Environment.objects.select_related("cluster").filter(pk=job.target_id).first()
    if env is None:
        raise JobFailed("the environment was deleted before it was provisioned")
    if env.cluster is None:
        raise JobFailed(f"environment '{env.slug}' has no cluster")
    if env.status != EnvironmentStatus.PROVISIONING:
        # A retry after the status moved on: make it provisioning again so the table holds.
        if env.status == EnvironmentStatus.READY:
            log(f"environment is already ready; re-applying namespace {env.namespace}")
        env = set_environment_status(env, EnvironmentStatus.PROVISIONING, reason="retry")
    labels = {
        "app.kubernetes.io/managed-by": "gantry",
        "gantry.dev/environment": env.slug,
        "gantry.dev/tier": env.tier,
    }
    log(f"applying namespace {env.namespace} on cluster {env.cluster.name}")
    try:
        existing = kube.get(env.cluster, "v1", "Namespace", "", env.namespace)
        owner = ((existing or {}).get("metadata", {}).get("labels") or {}).get("gantry.dev/environment")
        if existing is not None and owner != env.slug:
            reason = (f"namespace {env.namespace} already exists on {env.cluster.name} and is not Gantry's "
                      f"environment {env.slug} ({'it belongs to ' + owner if owner else 'no gantry.dev/environment label'}); "
                      "choose another namespace, or label it gantry.dev/environment=" + env.slug + " to adopt it")
            set_environment_status(env, EnvironmentStatus.FAILED, reason=reason)
            raise JobFailed(reason)
        kube.ensure_namespace(env.cluster, env.namespace, labels)
    except (kube.KubeError, ValueError, OSError) as exc:
        set_environment_status(env, EnvironmentStatus.FAILED, reason=str(exc))
        raise JobFailed(f"could not create namespace {env.namespace}: {exc}")
    set_environment_status(env, EnvironmentStatus.READY)
    log(f"namespace {env.namespace} is ready")
    return {"namespace": env.namespace}


@job_kind("environment.teardown", queue="default", title="Tear down environment")
def teardown_environment_job(job, log):
    env = Environment.objects.select_related("cluster").filter(pk=job.target_id).first()
    if env is None:
        log("the environment is already gone")
        return {}
    if env.cluster is not None:
        try:
            existing = kube.get(env.cluster, "v1", "Namespace", "", env.namespace)
            owner = ((existing or {}).get("metadata", {}).get("labels") or {}).get("gantry.dev/environment")
            if existing is None:
                log(f"namespace {env.namespace} does not exist on {env.cluster.name}; nothing to remove")
            elif owner != env.slug:
                log.warning(f"namespace {env.namespace} is not labelled as {env.slug}'s; it is left in place")
            else:
                log(f"deleting namespace {env.namespace} on cluster {env.cluster.name} and everything in it")
                kube.delete_namespace(env.cluster, env.namespace)
        except (kube.KubeError, ValueError, OSError) as exc:
            raise JobFailed(f"could not delete namespace {env.namespace}: {exc}; retry this job once the cluster "
                            "answers (the environment stays `deleting` until then)")
    finish_teardown(env)
    log(f"environment {env.slug} deleted")
    return {"namespace": env.namespace}
