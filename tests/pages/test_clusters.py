import pytest

from environments.models import Cluster
from portal.audit.models import AuditEvent
from portal.jobs.models import Job
from tests.pages.conftest import events, text

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: prod
    cluster:
      server: https://10.1.2.3:6443
users:
  - name: gantry
    user:
      token: super-secret-kube-token
contexts:
  - name: prod
    context:
      cluster: prod
      user: gantry
current-context: prod
"""


def test_it_lists_clusters_with_location_version_and_last_check(login, admin, remote_cluster):
    Cluster.objects.filter(pk=remote_cluster.pk).update(server_version="v1.31.2", last_check_ok=False,
                                                        last_error="connection refused")
    body = text(login(admin).get("/clusters/"))
    assert "https://10.0.0.1:6443" in body and "v1.31.2" in body
    assert "failed" in body and "connection refused" in body


def test_it_never_shows_credentials_back(login, admin):
    client = login(admin)
    client.post("/clusters/new/", {"name": "prod", "mode": "server", "server": "https://10.9.9.9:6443",
                                   "token": "tok-very-secret"})
    body = text(client.get("/clusters/"))
    assert "stored" in body
    assert "tok-very-secret" not in body
    assert Cluster.objects.get(name="prod").get_token() == "tok-very-secret"


@pytest.mark.parametrize("role", ["viewer", "deployer", "approver"])
def test_it_refuses_the_cluster_pages_to_non_admins(login, make_user, role):
    client = login(make_user("sam", role))
    assert client.get("/clusters/").status_code == 403
    assert client.get("/clusters/new/").status_code == 403


def test_it_shows_the_no_role_page_instead_of_clusters(login, nobody):
    assert "You have no role yet" in text(login(nobody).get("/clusters/"))


def test_it_offers_every_connection_mode(login, admin):
    body = text(login(admin).get("/clusters/new/"))
    for mode in ("server", "kubeconfig_path", "kubeconfig", "in_cluster"):
        assert f'<input type="radio" id="mode-{mode}" name="mode" value="{mode}"' in body


def test_it_registers_a_cluster_by_url_and_queues_a_check(login, admin):
    response = login(admin).post("/clusters/new/", {
        "name": "prod-eu-1", "mode": "server", "server": "https://10.9.9.9:6443", "token": "tok-abc-123", "insecure": "1",
        "kubeconfig": "ignored: because the mode is server"})
    assert response.status_code == 302 and response.url == "/clusters/"
    cluster = Cluster.objects.get(name="prod-eu-1")
    assert (cluster.mode, cluster.server, cluster.insecure) == ("server", "https://10.9.9.9:6443", True)
    assert Job.objects.filter(kind="cluster.check", target_id=str(cluster.pk), state="queued").exists()
    assert "tok-abc-123" not in str(list(AuditEvent.objects.values_list("changes", "detail")))


def test_it_registers_a_pasted_kubeconfig_with_a_context(login, admin):
    login(admin).post("/clusters/new/", {"name": "prod", "mode": "kubeconfig", "kubeconfig": KUBECONFIG,
                                         "context": "prod"})
    cluster = Cluster.objects.get(name="prod")
    assert cluster.mode == "kubeconfig" and cluster.context == "prod"
    assert "super-secret-kube-token" not in cluster.kubeconfig_encrypted
    assert "super-secret-kube-token" not in text(login(admin).get("/clusters/"))


def test_it_registers_a_kubeconfig_file_on_the_host(login, admin, tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    login(admin).post("/clusters/new/", {"name": "prod", "mode": "kubeconfig_path", "kubeconfig_path": str(path)})
    assert Cluster.objects.get(name="prod").kubeconfig_path == str(path)


def test_it_registers_an_in_cluster_cluster(login, admin):
    login(admin).post("/clusters/new/", {"name": "home", "mode": "in_cluster"})
    assert Cluster.objects.get(name="home").mode == "in_cluster"


def test_it_shows_a_kubeconfig_that_does_not_parse(login, admin):
    response = login(admin).post("/clusters/new/", {"name": "prod", "mode": "kubeconfig",
                                                    "kubeconfig": "clusters: [\n  token: leaked-secret\n"})
    body = text(response)
    assert response.status_code == 400
    assert "kubeconfig: the kubeconfig is not valid YAML" in body
    assert 'aria-describedby="id_kubeconfig-errors" aria-invalid="true"' in body  # the field points at it
    assert "leaked-secret" not in body  # the pasted text is not sent back
    assert 'value="prod"' in body
    assert not Cluster.objects.exists()


def test_it_shows_a_kubeconfig_without_the_chosen_context(login, admin):
    response = login(admin).post("/clusters/new/", {"name": "prod", "mode": "kubeconfig", "kubeconfig": KUBECONFIG,
                                                    "context": "staging"})
    assert response.status_code == 400
    assert "has no context named &#x27;staging&#x27;" in text(response)
    assert not Cluster.objects.exists()


def test_it_shows_an_unreadable_kubeconfig_path(login, admin, tmp_path):
    response = login(admin).post("/clusters/new/", {"name": "prod", "mode": "kubeconfig_path",
                                                    "kubeconfig_path": str(tmp_path / "missing")})
    assert response.status_code == 400 and "cannot read" in text(response)
    assert not Cluster.objects.exists()


def test_it_refuses_a_server_that_is_not_a_url(login, admin):
    response = login(admin).post("/clusters/new/", {"name": "prod", "mode": "server", "server": "10.0.0.1"})
    assert response.status_code == 400 and "is not an http(s) URL" in text(response)
    assert not Cluster.objects.exists()


def test_it_refuses_a_duplicate_cluster_name(login, admin, remote_cluster):
    response = login(admin).post("/clusters/new/", {"name": "remote", "mode": "in_cluster"})
    assert response.status_code == 400 and "already exists" in text(response)
    assert Cluster.objects.count() == 1


def test_it_refuses_a_direct_create_post_from_a_deployer(login, deployer):
    response = login(deployer).post("/clusters/new/", {"name": "rogue", "mode": "in_cluster"})
    assert response.status_code == 403
    assert not Cluster.objects.exists()
    assert events("cluster.create", "denied", actor="dee").exists()


def test_it_checks_the_connection_and_shows_the_job(login, admin, remote_cluster):
    response = login(admin).post("/clusters/remote/check/")
    job = Job.objects.get(kind="cluster.check")
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"


def test_it_refuses_a_direct_check_post_from_a_viewer(login, viewer, remote_cluster):
    assert login(viewer).post("/clusters/remote/check/").status_code == 403
    assert not Job.objects.exists()
    assert events("cluster.check", "denied", actor="vic").exists()


def test_it_deletes_a_cluster(login, admin, remote_cluster):
    client = login(admin)
    assert "Remove cluster remote?" in text(client.get("/clusters/remote/delete/"))
    response = client.post("/clusters/remote/delete/")
    assert response.status_code == 302
    assert not Cluster.objects.exists()
    assert events("cluster.delete", "success").exists()


def test_it_explains_why_a_cluster_with_environments_stays(login, admin, remote_cluster, make_env):
    make_env("dev-a", cluster=remote_cluster)
    response = login(admin).post("/clusters/remote/delete/", follow=True)
    assert "still hosts environments (dev-a)" in text(response)
    assert Cluster.objects.exists()


def test_it_refuses_a_direct_delete_post_from_a_deployer(login, deployer, remote_cluster):
    assert login(deployer).post("/clusters/remote/delete/").status_code == 403
    assert Cluster.objects.exists()
    assert events("cluster.delete", "denied", actor="dee").exists()
