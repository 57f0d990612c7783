"""Background work for clusters and environments (registered job kinds)."""
import time

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from portal import kube
from portal.audit.services import record
from portal.jobs.services import JobFailed, job_kind

from .choices import EnvironmentStatus
from .expiry import notice_text, recipients
from .models import Cluster, Environment
from .provisioning import ProvisioningFailed, apply_namespace_resources, deploy_template_services
from .status import set_environment_status
from .teardown import finish_teardown


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

    log(f"provisioning namespace {env.namespace} on cluster {env.cluster.name}")
    try:
        applied = apply_namespace_resources(env, log)
    except ProvisioningFailed as exc:
        set_environment_status(env, EnvironmentStatus.FAILED, reason=str(exc))
        raise JobFailed(str(exc)) from None
    set_environment_status(env, EnvironmentStatus.READY)
    log(f"namespace {env.namespace} is ready ({len(applied)} resource(s) applied)")
    deployments = deploy_template_services(env, log)
    return {"namespace": env.namespace, "applied": applied, "deployments": [d.pk for d in deployments]}


def wait_until_namespace_gone(env, log, timeout=None, interval=1.0):
    """A deleted namespace terminates (its finalizers run) before it disappears: wait for that."""

    timeout = timeout if timeout is not None else getattr(settings, "GANTRY_NAMESPACE_DELETE_TIMEOUT", 300)
    deadline = time.monotonic() + timeout
    while kube.get(env.cluster, "v1", "Namespace", "", env.namespace) is not None:
        if time.monotonic() >= deadline:
            raise JobFailed(f"namespace {env.namespace} is still terminating after {timeout} s; retry this job later "
                            "(the environment stays `deleting` until the namespace is gone)")
        log(f"namespace {env.namespace} is terminating; waiting")
        time.sleep(interval)
    log(f"namespace {env.namespace} is gone")


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
                wait_until_namespace_gone(env, log)
        except (kube.KubeError, ValueError, OSError) as exc:
            raise JobFailed(f"could not delete namespace {env.namespace}: {exc}; retry this job once the cluster "
                            "answers (the environment stays `deleting` until then)") from None
    finish_teardown(env)
    log(f"environment {env.slug} deleted")
    return {"namespace": env.namespace}


@job_kind("environment.expiry_notice", queue="default", title="Tell the owner an environment expires soon")
def expiry_notice_job(job, log):
    env = Environment.objects.select_related("owner").filter(pk=job.target_id).first()
    if env is None or env.expires_at is None:
        log("the environment is gone or no longer expires; nothing to send")
        return {}
    to = recipients(env)
    if not to:
        log.warning(f"environment {env.slug} has no owner e-mail or notify address; nobody to tell")
        return {"emails": 0}
    notice = job.params.get("notice", "24h")
    send_mail(f"[Gantry] {env.slug} expires in {notice}", notice_text(env, notice), settings.DEFAULT_FROM_EMAIL, to,
              fail_silently=False)
    log(f"e-mail sent to {len(to)} recipient(s)")
    return {"emails": len(to), "notice": notice}
