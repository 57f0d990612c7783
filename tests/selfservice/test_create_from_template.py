"""Creating environments from templates over the API, provisioned against the sandbox over HTTP."""
import threading

import pytest
from django.db import connection

from environments.models import Environment
from portal.audit.models import AuditEvent
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db


def create(client, name, template, **extra):
    return client.post("/api/v1/environments", {"name": name, "template": template, **extra})


def test_a_deployer_gets_a_preview_environment_with_quota_limits_isolation_and_an_owner(
        api, deployer, cluster, sandbox, provision):
    response = create(api(deployer), "pr-1234", "preview")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["tier"], body["template"], body["ttl_hours"]) == ("provisioning", "preview", "preview", 72)
    assert body["expires_at"] is not None and body["quota"]["requests.cpu"] == "2"
    job = provision("pr-1234")
    assert job.state == "succeeded", job.error
    assert Environment.objects.get(slug="pr-1234").status == "ready"
    namespace = sandbox.get("namespaces", "pr-1234")
    assert namespace["metadata"]["labels"]["gantry.dev/owner"] == "dee"
    assert namespace["metadata"]["labels"]["gantry.dev/template"] == "preview"
    quota = sandbox.get("resourcequotas", "gantry-quota", "pr-1234")
    assert quota["spec"]["hard"] == {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4",
                                     "limits.memory": "8Gi", "pods": "20"}
    limits = sandbox.get("limitranges", "gantry-limits", "pr-1234")["spec"]["limits"][0]
    assert limits["defaultRequest"] == {"cpu": "250m", "memory": "256Mi"} and limits["max"]["cpu"] == "2"
    allow = sandbox.get("networkpolicies", "gantry-allow-ingress", "pr-1234")
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in \
        allow["spec"]["ingress"][0]["from"]
    assert sandbox.get("networkpolicies", "gantry-default-deny", "pr-1234")["spec"]["policyTypes"] == ["Ingress"]
    binding = sandbox.get("rolebindings", "gantry-team", "pr-1234")
    assert binding["subjects"] == [{"kind": "User", "name": "dee", "apiGroup": "rbac.authorization.k8s.io"}]
    applied = AuditEvent.objects.filter(action="environment.resource_apply", environment="pr-1234", outcome="success")
    assert sorted(e.detail["resource"] for e in applied) == [
        "LimitRange gantry-limits", "Namespace pr-1234", "NetworkPolicy gantry-allow-ingress",
        "NetworkPolicy gantry-default-deny", "ResourceQuota gantry-quota", "RoleBinding gantry-team"]


@pytest.mark.parametrize("template, tier, status", [
    ("preview", "preview", "provisioning"),
    ("team-dev", "development", "provisioning"),
    ("staging", "staging", "requested"),
    ("production", "production", "requested"),
])
def test_each_seeded_template_creates_its_tier_and_protected_ones_wait_for_approval(
        api, admin, cluster, template, tier, status):
    response = create(api(admin), f"from-{template}", template)
    assert response.status_code == 201, response.content
    assert (response.json()["tier"], response.json()["status"]) == (tier, status)
    queued = Job.objects.filter(kind="environment.provision", target_repr=f"from-{template}").exists()
    assert queued == (status == "provisioning")
    event = AuditEvent.objects.get(action="environment.create", environment=f"from-{template}")
    assert event.detail["template"] == template
    assert ("approval" in event.detail) == (status == "requested")


def test_the_team_dev_template_applies_its_own_quota(api, admin, cluster, sandbox, provision):
    create(api(admin), "team-a-dev", "team-dev", team="team-a")
    assert provision("team-a-dev").state == "succeeded"
    assert sandbox.get("resourcequotas", "gantry-quota", "team-a-dev")["spec"]["hard"]["requests.cpu"] == "8"
    binding = sandbox.get("rolebindings", "gantry-team", "team-a-dev")
    assert binding["subjects"][0] == {"kind": "Group", "name": "team-a", "apiGroup": "rbac.authorization.k8s.io"}


def test_parameters_within_bounds_set_the_quota_and_keep_the_limit_ratio(api, deployer, cluster):
    response = create(api(deployer), "pr-7", "preview", parameters={"cpu": "1", "memory": "2Gi"})
    assert response.status_code == 201, response.content
    assert response.json()["quota"] | {} == {"requests.cpu": "1", "limits.cpu": "2", "requests.memory": "2Gi",
                                              "limits.memory": "4Gi", "pods": "20"}
    assert response.json()["status"] == "provisioning"


def test_asking_for_more_than_the_default_quota_waits_for_approval(api, deployer, cluster):
    response = create(api(deployer), "pr-8", "preview", parameters={"cpu": "4"})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "requested"
    assert "requests.cpu 4 (default 2)" in AuditEvent.objects.get(action="environment.create").detail["approval"]
    assert not Job.objects.filter(kind="environment.provision").exists()


@pytest.mark.parametrize("extra, message", [
    ({"parameters": {"cpu": "16"}}, "parameters.cpu: 16 is above the maximum of 4 set by template 'preview'"),
    ({"parameters": {"memory": "256Mi"}}, "parameters.memory: 256Mi is below the minimum of 1Gi set by template 'preview'"),
    ({"parameters": {"pods": "5"}}, "parameters.pods: template 'preview' does not let you set it"),
    ({"parameters": {"cpu": "a lot"}}, "parameters.cpu: 'a lot' is not a Kubernetes quantity"),
    ({"ttl_hours": 500}, "ttl_hours: 500 is above the maximum of 168 hours set by template 'preview'"),
    ({"parameters": {"ttl_hours": 200}}, "ttl_hours: 200 is above the maximum of 168 hours"),
    ({"tier": "production"}, "template 'preview' creates preview environments, not production"),
])
def test_values_out_of_bounds_are_refused_with_the_bound_named(api, deployer, cluster, extra, message):
    response = create(api(deployer), "pr-9", "preview", **extra)
    assert response.status_code == 400, response.content
    assert message in str(response.json()["detail"])
    assert not Environment.objects.filter(slug="pr-9").exists()


@pytest.mark.parametrize("name, message", [
    ("default", "belongs to the cluster itself"),
    ("new", "reserved"),
])
def test_names_that_are_not_free_dns_labels_are_refused(api, deployer, cluster, name, message):
    response = create(api(deployer), name, "preview")
    assert response.status_code == 400
    assert message in str(response.json()["detail"])


def test_an_unknown_template_is_refused_with_the_known_ones_listed(api, deployer, cluster):
    response = create(api(deployer), "x", "gigantic")
    assert response.status_code == 400
    assert "no environment template named 'gigantic'" in response.json()["detail"]
    assert "preview" in response.json()["detail"]


def test_the_same_name_twice_is_a_conflict_and_never_a_second_environment(api, deployer, cluster):
    client = api(deployer)
    assert create(client, "pr-42", "preview").status_code == 201
    again = create(client, "pr-42", "preview")
    assert again.status_code == 409
    assert "already exists" in str(again.json()["detail"])
    assert Environment.objects.filter(slug="pr-42").count() == 1


def test_a_viewer_cannot_create_from_a_template(api, viewer, cluster):
    response = create(api(viewer), "pr-1", "preview")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="environment.create", outcome="denied", actor="vic").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_name_create_one_environment(api, deployer, cluster):
    from tests.conftest import token_for

    token = token_for(deployer)
    answers = []
    barrier = threading.Barrier(4)

    def attempt():
        try:
            barrier.wait()
            answers.append(create(api(token=token), "pr-race", "preview").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers).count(201) == 1, answers
    assert set(answers) <= {201, 409}, answers
    assert Environment.objects.filter(slug="pr-race").count() == 1


def test_a_refused_resource_fails_provisioning_naming_it_and_a_retry_succeeds(
        api, deployer, cluster, sandbox, provision, django_capture_on_commit_callbacks):
    from portal.jobs.services import retry_job

    sandbox.refuse_writes("limitranges", "LimitRanges need the platform team's sign-off")
    create(api(deployer), "pr-11", "preview")
    job = provision("pr-11")
    assert job.state == "failed"
    assert "could not apply LimitRange gantry-limits in namespace pr-11" in job.error
    assert "LimitRanges need the platform team's sign-off" in job.error
    env = Environment.objects.get(slug="pr-11")
    assert env.status == "failed"
    assert AuditEvent.objects.filter(action="environment.resource_apply", outcome="failure",
                                     environment="pr-11").exists()
    assert sandbox.get("resourcequotas", "gantry-quota", "pr-11") is not None  # applied before the failure
    sandbox.refuse_writes("limitranges", None)
    with django_capture_on_commit_callbacks(execute=False):
        retry_job(job, user=deployer)
    retried = provision("pr-11")
    assert retried.state == "succeeded", retried.error
    assert Environment.objects.get(slug="pr-11").status == "ready"
    assert sandbox.get("limitranges", "gantry-limits", "pr-11") is not None
