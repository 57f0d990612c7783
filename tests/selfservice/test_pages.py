"""The self-service pages: the create form (checked as you type), provisioning, quota bars, templates."""
import pytest

from environments.models import Environment, EnvironmentTemplate
from portal.audit.models import AuditEvent
from tests.pages.conftest import text

pytestmark = pytest.mark.django_db


def test_the_form_shows_each_template_and_the_bounds_of_the_chosen_one(login, deployer, cluster):
    body = text(login(deployer).get("/environments/request/?template=preview"))
    assert 'hx-post="/environments/request/check/"' in body
    assert "staging (staging, needs approval)" in body
    assert "requests.cpu, from 500m to 4; default 2" in body
    assert "from 1 to 168; default 72" in body


def test_the_check_as_you_type_says_the_name_is_free(login, deployer, cluster):
    body = text(login(deployer).post("/environments/request/check/", {"name": "pr-77", "template": "preview"},
                                     HTTP_HX_REQUEST="true"))
    assert "<code>pr-77</code> is free and every value is within bounds" in body
    assert "<!doctype html>" not in body  # a fragment


@pytest.mark.parametrize("values, message", [
    ({"name": "!!!"}, "no letters or digits to make a DNS label from"),
    ({"name": "pr-77", "slug": "PR_77"}, "not a valid DNS label"),
    ({"name": "pr-77", "param_cpu": "9"}, "9 is above the maximum of 4 set by template"),
    ({"name": "pr-77", "ttl_hours": "500"}, "500 is above the maximum of 168 hours"),
])
def test_the_check_as_you_type_names_the_problem_and_the_bound(login, deployer, cluster, values, message):
    body = text(login(deployer).post("/environments/request/check/", {"template": "preview", **values}))
    assert message in body


def test_the_check_as_you_type_says_when_a_name_is_taken(login, deployer, cluster, make_env):
    make_env("pr-77", tier="preview")
    body = text(login(deployer).post("/environments/request/check/", {"name": "pr-77", "template": "preview"}))
    assert "an environment &#x27;pr-77&#x27; already exists" in body


def test_the_check_warns_that_more_than_the_default_needs_approval(login, deployer, cluster):
    body = text(login(deployer).post("/environments/request/check/",
                                     {"name": "pr-77", "template": "preview", "param_cpu": "3"}))
    assert "It needs approval" in body and "requests.cpu 3 (default 2)" in body


def test_submitting_the_form_creates_it_and_opens_the_provisioning_page(login, deployer, cluster, provision):
    client = login(deployer)
    response = client.post("/environments/request/", {"name": "pr-78", "template": "preview", "param_memory": "2Gi"})
    assert response.status_code == 302 and response.url == "/environments/pr-78/provisioning/"
    env = Environment.objects.get(slug="pr-78")
    assert env.guardrails["quota"]["requests.memory"] == "2Gi" and env.owner == deployer
    page = text(client.get(response.url))
    assert "Provisioning" in page and "Waiting for a worker" in page and 'hx-trigger="every 1s"' in page
    provision("pr-78")
    page = text(client.get(response.url))
    assert "✓ ResourceQuota gantry-quota" in page and "✓ NetworkPolicy gantry-default-deny" in page
    assert "is ready: namespace <code>pr-78</code>" in page
    assert 'hx-trigger="every 1s"' not in page  # finished: it stops polling


def test_a_refused_form_keeps_the_values_and_says_why(login, deployer, cluster, make_env):
    make_env("pr-79", tier="preview")
    response = login(deployer).post("/environments/request/", {"name": "pr-79", "template": "preview"})
    assert response.status_code == 409
    assert "already exists" in text(response) and 'value="pr-79"' in text(response)


def test_the_provisioning_page_polls_with_304_while_nothing_changes(login, deployer, cluster):
    client = login(deployer)
    client.post("/environments/request/", {"name": "pr-80", "template": "preview"})
    first = client.get("/environments/pr-80/provisioning/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="provisioning")
    assert first.status_code == 200
    again = client.get("/environments/pr-80/provisioning/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="provisioning",
                       HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_a_failed_resource_is_shown_with_the_clusters_reason(login, deployer, cluster, sandbox, provision):
    sandbox.refuse_writes("networkpolicies", "NetworkPolicies are managed centrally")
    client = login(deployer)
    client.post("/environments/request/", {"name": "pr-81", "template": "preview"})
    provision("pr-81")
    page = text(client.get("/environments/pr-81/provisioning/"))
    assert "Provisioning failed" in page
    assert "✗ NetworkPolicy gantry-default-deny" in page and "NetworkPolicies are managed centrally" in page


def test_the_environment_page_shows_quota_bars_from_the_quota_status(login, deployer, cluster, sandbox, provision):
    from portal import kube

    client = login(deployer)
    client.post("/environments/request/", {"name": "pr-82", "template": "preview"})
    provision("pr-82")
    env = Environment.objects.get(slug="pr-82")
    kube.apply(env.cluster, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "pr-82"},
                             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                      "template": {"metadata": {"labels": {"app": "web"}},
                                                   "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    assert 'hx-get="/environments/pr-82/quota/"' in text(client.get("/environments/pr-82/"))
    bars = text(client.get("/environments/pr-82/quota/"))
    assert "requests.cpu" in bars and "500m / 2" in bars and 'value="25"' in bars  # 2 x the 250m default
    assert "limits.memory" in bars and "1Gi / 8Gi" in bars


def test_the_environment_page_shows_expiry_with_an_extend_form_for_the_owner(login, deployer, viewer, cluster):
    client = login(deployer)
    client.post("/environments/request/", {"name": "pr-83", "template": "preview"})
    body = text(client.get("/environments/pr-83/"))
    assert "expires" in body and 'action="/environments/pr-83/extend/"' in body and "up to 168 h from now" in body
    response = client.post("/environments/pr-83/extend/", {"hours": "24"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="environment.extend", environment="pr-83").exists()
    assert 'action="/environments/pr-83/extend/"' not in text(login(viewer).get("/environments/pr-83/"))


def test_admins_see_and_edit_templates(login, admin):
    client = login(admin)
    body = text(client.get("/environment-templates/"))
    assert "production" in body and "requests.cpu 50" in body and "max 4 / 8Gi" in body
    response = client.post("/environment-templates/preview/", {
        "description": "Per pull request", "tier": "preview", "cluster": "", "network_policy": "default-deny",
        "ingress_namespace": "ingress-nginx", "ttl_hours": "48", "max_ttl_hours": "96", "required_approvals": "1",
        "quota": '{"requests.cpu": "2", "limits.cpu": "4"}', "limit_range": "{}",
        "parameters": '{"cpu": {"min": "1", "max": "4"}}', "services": "[]"})
    assert response.status_code == 302, text(response)
    template = EnvironmentTemplate.objects.get(name="preview")
    assert (template.ttl_hours, template.max_ttl_hours, template.quota["limits.cpu"]) == (48, 96, "4")


def test_a_bad_template_form_names_the_field(login, admin):
    response = login(admin).post("/environment-templates/new/", {
        "name": "x", "tier": "preview", "quota": "{not json", "limit_range": "{}", "parameters": "{}",
        "services": "[]"})
    assert response.status_code == 400 and "quota: not valid JSON" in text(response)


def test_a_deployer_cannot_open_the_template_form(login, deployer):
    assert login(deployer).get("/environment-templates/new/").status_code == 403


def test_the_environments_page_and_create_form_cost_constant_queries(login, deployer, cluster, make_env,
                                                                       django_assert_max_num_queries):
    for i in range(30):
        make_env(f"pr-{i}", tier="preview")
    client = login(deployer)
    with django_assert_max_num_queries(12):
        assert client.get("/environments/").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/environments/request/").status_code == 200
