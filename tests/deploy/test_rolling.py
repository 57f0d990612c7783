"""Rolling deployments: server-side apply in order, rollout waits, failures a user can act on."""
import pytest

from deployments import rollout
from deployments.actions import request_rollback
from deployments.models import Deployment
from deployments.monitoring.models import CellHealth
from portal import kube
from portal.audit.models import AuditEvent
from portal.jobs.models import Job
from portal.jobs.services import JobFailed, run_job

from .conftest import image, queue_deployment, state_of

pytestmark = pytest.mark.django_db

CONFIG = """
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ${service}-config
data:
  APP_VERSION: "${version}"
"""


@pytest.fixture
def web(make_service, web_manifest):
    return make_service("web", manifest=web_manifest + CONFIG)


def test_it_applies_the_manifests_and_waits_for_the_rollout(deployer, prod, web, sandbox, log):
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    result = rollout.execute(deployment.pk, log)
    deployment = state_of(deployment)
    assert deployment.state == "succeeded", deployment.error
    assert result["deployment"] == deployment.pk
    live = sandbox.get("deployments", "web", "prod")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == image("web", "1.0.0")
    assert live["status"]["readyReplicas"] == 1
    for kind, name in (("deployments", "web"), ("services", "web"), ("configmaps", "web-config")):
        managers = {entry["manager"] for entry in sandbox.get(kind, name, "prod")["metadata"]["managedFields"]}
        assert "gantry" in managers, (kind, managers)
    assert sandbox.get("configmaps", "web-config", "prod")["data"] == {"APP_VERSION": "1.0.0"}
    # config first, then the workload, then what points at it
    applied = [message for _, message in log.lines if message.startswith("applied ")]
    assert applied == ["applied ConfigMap prod/web-config", "applied Deployment prod/web", "applied Service prod/web"]
    assert "Deployment web rolled out" in log.text
    assert AuditEvent.objects.filter(action="deployment.succeeded", actor="gantry-worker").exists()


def test_the_job_runner_runs_it_as_a_worker_would(deployer, prod, web, sandbox):
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    run_job(str(deployment.job_id))
    job = Job.objects.get(pk=deployment.job_id)
    assert job.state == "succeeded", job.error
    assert state_of(deployment).state == "succeeded"
    lines = list(job.log_lines.values_list("message", flat=True))
    assert "applied Deployment prod/web" in lines
    assert job.result["deployment"] == deployment.pk
    assert "health of web: healthy (1/1 ready)" in lines  # refreshed at once, not at the next poll
    assert CellHealth.objects.get(service=web, environment=prod).status == "healthy"


def test_a_failing_rollout_fails_the_deployment(deployer, prod, web, sandbox, log, short_rollouts):
    sandbox.set_fault("web", "fail_rollout")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    with pytest.raises(JobFailed, match="rollout deadline exceeded") as failure:
        rollout.execute(deployment.pk, log)
    deployment = state_of(deployment)
    assert deployment.state == "failed"
    assert deployment.error == str(failure.value)
    assert "Deployment web in namespace prod" in deployment.error


def test_a_rollout_that_never_becomes_ready_times_out(deployer, prod, web, sandbox, log, short_rollouts):
    sandbox.set_fault("web", "never_ready")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    with pytest.raises(JobFailed, match="rollout deadline exceeded"):
        rollout.execute(deployment.pk, log)
    assert "was not ready after 2 s" in state_of(deployment).error


def test_an_image_pull_error_fails_the_deployment(deployer, prod, web, sandbox, log, short_rollouts):
    sandbox.set_fault("web", "image_pull")
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    with pytest.raises(JobFailed):
        rollout.execute(deployment.pk, log)
    error = state_of(deployment).error
    assert error.startswith("image pull error:")
    assert image("web", "1.0.0") in error and "check that the release's image exists" in error


def test_a_quota_refusal_fails_the_deployment(deployer, prod, web, cluster, sandbox, log):
    kube.apply(cluster, {"apiVersion": "v1", "kind": "ResourceQuota",
                         "metadata": {"name": "no-deployments", "namespace": "prod"},
                         "spec": {"hard": {"count/deployments.apps": "0"}}})
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    with pytest.raises(JobFailed, match="quota exceeded"):
        rollout.execute(deployment.pk, log)
    deployment = state_of(deployment)
    assert deployment.state == "failed"
    assert "no-deployments" in deployment.error and "raise the ResourceQuota of namespace prod" in deployment.error
    assert sandbox.get("deployments", "web", "prod") is None
    assert AuditEvent.objects.filter(action="deployment.failed", outcome="failure").exists()


SIDECAR = """\
        - name: proxy
          image: envoyproxy/envoy:latest
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {cpu: 100m, memory: 128Mi}
"""


def with_sidecar(manifest):
    return manifest.replace("      containers:\n", "      containers:\n" + SIDECAR, 1)


def test_a_latest_image_in_the_manifest_is_refused_in_production(deployer, prod, make_service, web_manifest,
                                                                  sandbox, log):
    # The request is refused for every image the manifests would run, not only the release's own.
    from portal.errors import InvalidInput

    make_service("web", manifest=with_sidecar(web_manifest))
    with pytest.raises(InvalidInput) as refused:
        queue_deployment(deployer, prod, "web", "1.0.0")
    message = str(refused.value)
    assert "image 'envoyproxy/envoy:latest' uses the tag 'latest'" in message
    assert "spec.template.spec.containers[0]" in message
    assert not Deployment.objects.exists()
    assert sandbox.get("deployments", "web", "prod") is None  # nothing was applied


def test_the_tier_policy_finds_latest_in_any_container(prod, web_manifest):
    from deployments import manifests

    problems = manifests.environment_policy_problems(
        manifests.parse_documents(with_sidecar(web_manifest).replace("${image}", "web:1").replace("${service}", "web")
                                  .replace("${replicas}", "1").replace("${environment}", "prod")), prod)
    assert problems and "latest" in problems[0]


def test_a_latest_image_is_fine_in_development(deployer, make_env, cluster, make_service, web_manifest, sandbox, log):
    kube.ensure_namespace(cluster, "dev", {})
    dev = make_env("dev", cluster=cluster)
    make_service("web", manifest=with_sidecar(web_manifest))
    deployment = queue_deployment(deployer, dev, "web", "1.0.0", image_ref="registry.example.com/shop/web")
    rollout.execute(deployment.pk, log)
    assert state_of(deployment).state == "succeeded"
    containers = sandbox.get("deployments", "web", "dev")["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["envoyproxy/envoy:latest", "registry.example.com/shop/web"]


def test_a_manifest_change_after_approval_fails_the_queued_deployment(deployer, prod, web, sandbox, log):
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    web.manifest = web.manifest.replace("cpu: 250m", "cpu: 300m")
    web.save()
    with pytest.raises(JobFailed, match="manifests changed after approval"):
        rollout.execute(deployment.pk, log)
    assert state_of(deployment).state == "failed"
    assert sandbox.get("deployments", "web", "prod") is None


def test_a_manifest_that_breaks_with_real_values_fails_with_its_line(deployer, prod, make_service, web_manifest,
                                                                      sandbox, log):
    # Quoted placeholders are the author's job: an unquoted version like 2.10 becomes a number.
    manifest = web_manifest + CONFIG.replace('"${version}"', "${version}")
    make_service("web", manifest=manifest)
    deployment = queue_deployment(deployer, prod, "web", "2.10")
    with pytest.raises(JobFailed, match="are not valid") as failure:
        rollout.execute(deployment.pk, log)
    line = manifest.splitlines().index("  APP_VERSION: ${version}") + 1
    assert f"document 3, line {line}, data.APP_VERSION: 2.1 is not of type 'string';" in str(failure.value)
    assert sandbox.get("deployments", "web", "prod") is None


def test_an_unreachable_cluster_fails_with_a_readable_reason(deployer, prod, web, sandbox, log):
    sandbox.stop()
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    with pytest.raises(JobFailed, match="cannot reach the cluster"):
        rollout.execute(deployment.pk, log)
    assert state_of(deployment).state == "failed"


def test_a_rolling_rollback_redeploys_the_previous_image(deployer, prod, web, sandbox, log):
    first = queue_deployment(deployer, prod, "web", "1.0.0")
    rollout.execute(first.pk, log)
    second = queue_deployment(deployer, prod, "web", "1.1.0")
    rollout.execute(second.pk, log)
    live = sandbox.get("deployments", "web", "prod")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == image("web", "1.1.0")

    rollback = request_rollback(deployer, second.pk, reason="checkout broken")
    assert rollback.state == "queued" and rollback.kind == "rollback"
    rollout.execute(rollback.pk, log)
    assert state_of(rollback).state == "succeeded"
    assert state_of(second).state == "rolled_back"
    live = sandbox.get("deployments", "web", "prod")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == image("web", "1.0.0")
    assert sandbox.get("configmaps", "web-config", "prod")["data"] == {"APP_VERSION": "1.0.0"}
    assert len(sandbox.list("deployments", "prod")) == 1


def test_an_environment_without_a_cluster_fails_the_deployment(deployer, make_env, web, log):
    env = make_env("staging", tier="staging")
    deployment = queue_deployment(deployer, env, "web", "1.0.0")
    with pytest.raises(JobFailed, match="environment staging has no cluster; attach one"):
        rollout.execute(deployment.pk, log)
    assert state_of(deployment).state == "failed"
