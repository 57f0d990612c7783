import pytest

from deployments.models import Service
from environments.models import Cluster
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443"}
users:
- name: u
  user: {token: "super-secret-token"}
contexts:
- name: main
  context: {cluster: c, user: u}
current-context: main
"""


def test_admin_registers_a_service(api, admin, web_manifest):
    response = api(admin).post("/api/v1/services", {"name": "web", "manifest": web_manifest, "team": "storefront"})
    assert response.status_code == 201, response.content
    assert response.json()["strategy"] == "rolling"
    assert response.json()["health_path"] == "/health"
    assert AuditEvent.objects.filter(action="service.create", actor="ada").exists()


@pytest.mark.parametrize("role", ["viewer", "deployer", "approver"])
def test_only_admins_register_services(api, make_user, web_manifest, role):
    user = make_user("u", role)
    response = api(user).post("/api/v1/services", {"name": "web", "manifest": web_manifest})
    assert response.status_code == 403
    assert not Service.objects.exists()
    assert AuditEvent.objects.filter(action="service.create", outcome="denied").exists()


def test_a_manifest_that_is_not_yaml_names_line_and_column(api, admin):
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: [unclosed\n"
    response = api(admin).post("/api/v1/services", {"name": "web", "manifest": manifest})
    assert response.status_code == 400
    detail = str(response.json()["detail"])
    assert "not valid YAML" in detail and "line" in detail and "column" in detail
    assert not Service.objects.exists()


def test_an_unknown_placeholder_is_refused(api, admin, web_manifest):
    response = api(admin).post("/api/v1/services", {"name": "web", "manifest": web_manifest + "\n# ${colour}\n"})
    assert response.status_code == 400
    assert "unknown placeholder ${colour}" in str(response.json()["detail"])


def test_a_duplicate_service_name_is_refused(api, admin, make_service, web_manifest):
    make_service("web")
    response = api(admin).post("/api/v1/services", {"name": "web", "manifest": web_manifest})
    assert response.status_code == 400
    assert "already exists" in str(response.json()["detail"])


def test_viewers_list_services(api, viewer, make_service):
    make_service("web"), make_service("api")
    response = api(viewer).get("/api/v1/services")
    assert response.status_code == 200
    assert [s["name"] for s in response.json()] == ["api", "web"]


def test_admin_registers_a_cluster_by_server_and_the_token_is_never_echoed(api, admin):
    response = api(admin).post("/api/v1/clusters", {"name": "prod-eu", "server": "https://10.0.0.1:6443",
                                                     "token": "very-secret"})
    assert response.status_code == 201, response.content
    assert "very-secret" not in response.content.decode()
    assert response.json()["has_credentials"] is True
    cluster = Cluster.objects.get(name="prod-eu")
    assert cluster.token_encrypted and "very-secret" not in cluster.token_encrypted
    assert cluster.get_token() == "very-secret"
    for event in AuditEvent.objects.all():
        assert "very-secret" not in str(event.changes) + str(event.detail)


def test_a_pasted_kubeconfig_is_stored_encrypted(api, admin):
    response = api(admin).post("/api/v1/clusters", {"name": "kc", "kubeconfig": KUBECONFIG, "context": "main"})
    assert response.status_code == 201, response.content
    cluster = Cluster.objects.get(name="kc")
    assert "super-secret-token" not in cluster.kubeconfig_encrypted
    assert "super-secret-token" in cluster.get_kubeconfig()
    assert "super-secret-token" not in response.content.decode()


@pytest.mark.parametrize("kubeconfig, message", [
    ("clusters: [unclosed", "YAML"),
    ("apiVersion: v1\nkind: Config\n", "context"),
])
def test_a_kubeconfig_that_does_not_parse_is_refused(api, admin, kubeconfig, message):
    response = api(admin).post("/api/v1/clusters", {"name": "kc", "kubeconfig": kubeconfig})
    assert response.status_code == 400
    assert message.lower() in str(response.json()["detail"]).lower()
    assert not Cluster.objects.exists()


def test_an_unknown_context_is_refused(api, admin):
    response = api(admin).post("/api/v1/clusters", {"name": "kc", "kubeconfig": KUBECONFIG, "context": "nope"})
    assert response.status_code == 400


def test_in_cluster_mode(api, admin):
    response = api(admin).post("/api/v1/clusters", {"name": "here", "in_cluster": True})
    assert response.status_code == 201
    assert response.json()["mode"] == "in_cluster"


@pytest.mark.parametrize("role", ["viewer", "deployer", "approver"])
def test_only_admins_register_clusters(api, make_user, role):
    user = make_user("u", role)
    assert api(user).post("/api/v1/clusters", {"name": "c", "in_cluster": True}).status_code == 403
    assert AuditEvent.objects.filter(action="cluster.create", outcome="denied").exists()


def test_a_global_viewer_lists_clusters_but_a_scoped_one_cannot(api, viewer, make_user, make_env):
    Cluster.objects.create(name="c1", mode="in_cluster")
    assert api(viewer).get("/api/v1/clusters").status_code == 200
    scoped = make_user("s", ("viewer", make_env("dev")))
    assert api(scoped).get("/api/v1/clusters").status_code == 403


def test_openapi_document_is_served(api):
    response = api().get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/environments", "/api/v1/environments/{slug}", "/api/v1/services", "/api/v1/clusters",
                 "/api/v1/audit", "/api/v1/audit/export"):
        assert path in paths
