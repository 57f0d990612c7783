"""Refusals and edge cases found in review: each must refuse clearly and change nothing."""
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from deployments.actions import approve_deployment, request_deployment, request_rollback
from deployments.live import live_deployment
from deployments.models import Deployment
from deployments.releases import register_release
from deployments.worker_callbacks import finish_deployment, mark_running
from environments.models import Cluster
from portal.audit.models import AuditEvent
from portal.audit.queries import export_csv
from portal.audit.services import record
from portal.errors import Conflict, Forbidden

pytestmark = pytest.mark.django_db

KUBECONFIG_WITH_CONTEXTS = """
apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://10.0.0.1:6443"}}
- {name: b, cluster: {server: "https://10.0.0.2:6443"}}
users:
- {name: u, user: {token: "t"}}
contexts:
- {name: ctx-a, context: {cluster: a, user: u}}
- {name: ctx-b, context: {cluster: b, user: u}}
current-context: ctx-a
"""

EXEC_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://10.0.0.1:6443"}}]
users: [{name: u, user: {exec: {command: /bin/sh, args: ["-c", "id"], apiVersion: client.authentication.k8s.io/v1}}}]
contexts: [{name: c, context: {cluster: a, user: u}}]
current-context: c
"""


def test_editing_a_cluster_keeps_its_context(api, admin):
    client = api(admin)
    assert client.post("/api/v1/clusters", {"name": "kc", "kubeconfig": KUBECONFIG_WITH_CONTEXTS,
                                             "context": "ctx-b"}).status_code == 201
    assert client.patch("/api/v1/clusters/kc", {"insecure": True}).status_code == 200
    assert Cluster.objects.get(name="kc").context == "ctx-b"


def test_a_pasted_kubeconfig_may_not_run_programs_on_the_host(api, admin):
    response = api(admin).post("/api/v1/clusters", {"name": "kc", "kubeconfig": EXEC_KUBECONFIG})
    assert response.status_code == 400
    assert "run a program or read a file on the Gantry host" in str(response.json()["detail"])
    assert not Cluster.objects.exists()


@pytest.mark.parametrize("namespace", ["kube-system", "default"])
def test_the_clusters_own_namespaces_are_refused(api, admin, namespace):
    response = api(admin).post("/api/v1/environments", {"name": "X", "tier": "development", "namespace": namespace})
    assert response.status_code == 400
    assert "belongs to the cluster itself" in str(response.json()["detail"])


def test_an_impossible_freeze_date_is_a_400(api, admin, make_env):
    make_env("prod", tier="production")
    response = api(admin).patch("/api/v1/environments/prod", {"freeze": {"until": "2030-02-30T00:00:00Z", "reason": "x"}})
    assert response.status_code == 400


def test_an_impossible_audit_filter_date_is_a_400(api, viewer):
    assert api(viewer).get("/api/v1/audit", {"since": "2030-02-30"}).status_code == 400


def test_unknown_api_paths_answer_json(api, viewer):
    response = api(viewer).get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_csv_export_neutralises_formulas():
    with transaction.atomic():
        record("auth.login_failed", actor_name="=HYPERLINK(\"http://evil\")", outcome="denied")
    text = "".join(export_csv(AuditEvent.objects.all()))
    assert "'=HYPERLINK" in text


def test_a_viewer_without_creatable_tiers_is_denied_even_for_a_bad_tier(api, viewer):
    response = api(viewer).post("/api/v1/environments", {"name": "X", "tier": "development"})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="environment.create", outcome="denied").exists()


def test_an_admin_cannot_approve_their_own_break_glass(make_user, make_env, make_service):
    env = make_env("stage", tier="staging", required_approvals=0)
    env.freeze_until, env.freeze_reason = timezone.now() + timedelta(days=1), "release freeze"
    env.save()
    make_service("web")
    boss = make_user("boss", "admin")
    release = register_release(boss, {"service": "web", "version": "1", "image": "web:1"})
    deployment = request_deployment(boss, {"release": release.pk, "environment": "stage",
                                                      "break_glass": {"reason": "outage"}})
    with pytest.raises(Forbidden, match="someone other than the admin"):
        approve_deployment(boss, deployment.pk)


def test_a_rollback_is_refused_while_a_newer_deployment_is_queued(make_user, make_env, make_service):
    env = make_env("dev")
    make_service("web")
    dee = make_user("dee2", "deployer")
    releases = [register_release(dee, {"service": "web", "version": v, "image": f"web:{v}"})
                for v in ("1", "2", "3")]
    for release in releases[:2]:
        deployment = request_deployment(dee, {"release": release.pk, "environment": "dev"})
        mark_running(deployment.pk)
        finish_deployment(deployment.pk, True)
    request_deployment(dee, {"release": releases[2].pk, "environment": "dev"})
    live = live_deployment(deployment.service_id, env.pk)
    with pytest.raises(Conflict, match="already approved or under way"):
        request_rollback(dee, live.pk)
    assert not Deployment.objects.filter(kind="rollback").exists()


def test_provisioning_does_not_adopt_a_namespace_gantry_does_not_own(admin, cluster, django_capture_on_commit_callbacks):
    from environments.lifecycle import create_environment
    from portal import kube
    from portal.jobs.models import Job
    from portal.jobs.services import run_job

    kube.ensure_namespace(cluster, "payments", {"team": "payments"})
    env = create_environment(admin, {"name": "Pay", "tier": "development", "cluster": "sandbox",
                                     "namespace": "payments"})
    run_job(str(Job.objects.get(kind="environment.provision").pk))
    env.refresh_from_db()
    assert env.status == "failed"
    job = Job.objects.get(kind="environment.provision")
    assert "already exists" in job.error and "not Gantry's" in job.error
    labels = kube.get(cluster, "v1", "Namespace", "", "payments")["metadata"]["labels"]
    assert "gantry.dev/environment" not in labels


def test_deleting_an_environment_on_a_cluster_tears_down_its_namespace_first(api, admin, cluster):
    from environments.lifecycle import create_environment
    from environments.models import Environment
    from portal import kube
    from portal.jobs.models import Job
    from portal.jobs.services import run_job

    create_environment(admin, {"name": "Feature 9", "tier": "preview", "cluster": "sandbox"})
    run_job(str(Job.objects.get(kind="environment.provision").pk))
    response = api(admin).delete("/api/v1/environments/feature-9")
    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    assert api(admin).delete("/api/v1/environments/feature-9").status_code == 409
    run_job(response.json()["job"])
    assert Environment.objects.get(slug="feature-9").status == "deleted"  # kept for history and audit
    assert kube.get(cluster, "v1", "Namespace", "", "feature-9") is None
    actions = list(AuditEvent.objects.filter(environment="feature-9").values_list("action", flat=True))
    assert "environment.delete" in actions and "environment.deleted" in actions


def test_an_expired_environment_is_torn_down_but_a_foreign_namespace_is_left(admin, cluster):
    from environments.models import Environment
    from environments.teardown import expire_environments
    from portal import kube
    from portal.jobs.models import Job
    from portal.jobs.services import run_job

    kube.ensure_namespace(cluster, "shared", {"owner": "someone-else"})
    env = Environment.objects.create(name="Old preview", slug="old-preview", tier="preview", cluster=cluster,
                                     namespace="shared", status="ready", ttl_hours=1,
                                     expires_at=timezone.now() - timedelta(minutes=1))
    Environment.objects.create(name="Fresh", slug="fresh", tier="preview", namespace="fresh", status="ready",
                               ttl_hours=1, expires_at=timezone.now() + timedelta(hours=1))
    assert expire_environments() == 1
    assert Environment.objects.get(pk=env.pk).status == "deleting"
    assert AuditEvent.objects.filter(action="environment.expired", actor="gantry-scheduler").exists()
    job = Job.objects.get(kind="environment.teardown")
    run_job(str(job.pk))
    assert Environment.objects.get(pk=env.pk).status == "deleted"
    assert Environment.objects.get(slug="fresh").status == "ready"
    assert kube.get(cluster, "v1", "Namespace", "", "shared") is not None
    assert job.log_lines.filter(level="warning", message__contains="left in place").exists()


def _two_successful_deployments(make_user, make_env, make_service, **env_fields):
    env = make_env("dev", **env_fields)
    make_service("web")
    dee = make_user("dee3", "deployer")
    for version in ("1", "2"):
        release = register_release(dee, {"service": "web", "version": version, "image": f"web:{version}"})
        deployment = request_deployment(dee, {"release": release.pk, "environment": "dev"})
        if deployment.state == "pending_approval":
            for n in range(env.required_approvals):
                approve_deployment(make_user(f"ok{version}{n}", "approver"), deployment.pk)
        mark_running(deployment.pk)
        finish_deployment(deployment.pk, True)
    return env, dee, deployment


def test_a_rollback_needs_no_approval_and_starts_at_once(make_user, make_env, make_service):
    env, dee, live = _two_successful_deployments(make_user, make_env, make_service, required_approvals=1)
    rollback = request_rollback(dee, live.pk, reason="errors after release 2")
    assert rollback.kind == "rollback" and rollback.state == "queued" and rollback.job_id
    assert rollback.release.version == "1"


def test_a_rollback_waits_for_approval_when_the_environment_says_so(make_user, make_env, make_service):
    env, dee, live = _two_successful_deployments(make_user, make_env, make_service, required_approvals=1,
                                                 rollback_requires_approval=True)
    rollback = request_rollback(dee, live.pk)
    assert rollback.state == "pending_approval" and rollback.job_id is None
    approve_deployment(make_user("rm", "approver"), rollback.pk)
    assert Deployment.objects.get(pk=rollback.pk).state == "queued"
