import pytest

from deployments.models import Service
from tests.pages.conftest import events, text


def test_it_lists_services(login, viewer, make_service):
    make_service("web", team="storefront")
    body = text(login(viewer).get("/services/"))
    assert 'href="/services/web/"' in body and "storefront" in body


def test_it_shows_the_no_role_page_instead_of_services(login, nobody, make_service):
    make_service("web")
    body = text(login(nobody).get("/services/"))
    assert "You have no role yet" in body and "/services/web/" not in body


def test_it_shows_the_manifest_in_a_pre(login, viewer, make_service):
    make_service("web")
    body = text(login(viewer).get("/services/web/"))
    assert '<pre class="manifest" tabindex="0"><code>apiVersion: apps/v1' in body
    assert "image: ${image}" in body


def test_it_answers_404_for_an_unknown_service(login, viewer):
    assert login(viewer).get("/services/nope/").status_code == 404


def test_it_shows_add_edit_delete_to_admins(login, admin, make_service):
    make_service("web")
    client = login(admin)
    assert 'href="/services/new/"' in text(client.get("/services/"))
    body = text(client.get("/services/web/"))
    assert 'href="/services/web/edit/"' in body and 'href="/services/web/delete/"' in body


@pytest.mark.parametrize("role", ["viewer", "deployer", "approver"])
def test_it_hides_add_edit_delete_from_non_admins(login, make_user, make_service, role):
    make_service("web")
    client = login(make_user("sam", role))
    assert "/services/new/" not in text(client.get("/services/"))
    body = text(client.get("/services/web/"))
    assert "/edit/" not in body and "/delete/" not in body


def test_it_creates_a_service(login, admin, web_manifest):
    response = login(admin).post("/services/new/", {
        "name": "api", "team": "core", "strategy": "blue-green", "health_path": "/healthz",
        "manifest": web_manifest.replace("\n", "\r\n")})
    assert response.status_code == 302 and response.url == "/services/api/"
    service = Service.objects.get(name="api")
    assert (service.team, service.strategy, service.health_path) == ("core", "blue-green", "/healthz")
    assert service.manifest == web_manifest
    assert events("service.create", "success", target_repr="api").exists()


def test_it_shows_where_a_manifest_is_not_yaml(login, admin):
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a, b\n"
    response = login(admin).post("/services/new/", {"name": "api", "strategy": "rolling", "manifest": manifest})
    body = text(response)
    assert response.status_code == 400
    assert "manifest: line 6, column 1: not valid YAML" in body
    # above the textarea, and the text kept as typed
    assert body.index('id="id_manifest-errors"') < body.index('<textarea id="id_manifest"')
    assert "labels: [a, b" in body
    assert not Service.objects.exists()


def test_it_shows_an_unknown_placeholder(login, admin, web_manifest):
    response = login(admin).post("/services/new/", {"name": "api", "manifest": web_manifest.replace("${image}", "${img}")})
    assert response.status_code == 400
    assert "unknown placeholder ${img}" in text(response)


def test_it_refuses_a_duplicate_service_name(login, admin, make_service, web_manifest):
    make_service("web")
    response = login(admin).post("/services/new/", {"name": "web", "manifest": web_manifest})
    assert response.status_code == 400
    assert "a service named &#x27;web&#x27; already exists" in text(response)
    assert Service.objects.count() == 1


def test_it_refuses_a_bad_service_name(login, admin, web_manifest):
    response = login(admin).post("/services/new/", {"name": "Web App", "manifest": web_manifest})
    assert response.status_code == 400 and "name: &#x27;Web App&#x27; is not valid" in text(response)
    assert not Service.objects.exists()


def test_it_refuses_the_create_form_to_deployers(login, deployer):
    assert login(deployer).get("/services/new/").status_code == 403


def test_it_refuses_a_direct_create_post_from_a_deployer(login, deployer, web_manifest):
    response = login(deployer).post("/services/new/", {"name": "api", "manifest": web_manifest})
    assert response.status_code == 403
    assert not Service.objects.exists()
    assert events("service.create", "denied", actor="dee").exists()


def test_it_prefills_the_edit_form(login, admin, make_service):
    make_service("web", team="storefront")
    body = text(login(admin).get("/services/web/edit/"))
    assert 'value="storefront"' in body and "kind: Deployment" in body


def test_it_edits_a_service(login, admin, make_service, web_manifest):
    service = make_service("web")
    response = login(admin).post("/services/web/edit/", {
        "team": "platform", "strategy": "rolling", "health_path": "/ready", "description": "", "manifest": web_manifest})
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.team, service.health_path) == ("platform", "/ready")
    event = events("service.update", "success").get()
    assert event.changes["team"] == ["", "platform"]


def test_it_keeps_a_service_unchanged_when_the_manifest_is_bad(login, admin, make_service, web_manifest):
    service = make_service("web", team="storefront")
    response = login(admin).post("/services/web/edit/", {
        "team": "platform", "strategy": "rolling", "health_path": "/health", "manifest": "a: [\n"})
    assert response.status_code == 400 and "not valid YAML" in text(response)
    service.refresh_from_db()
    assert service.team == "storefront" and service.manifest == web_manifest


def test_it_refuses_a_direct_edit_post_from_a_viewer(login, viewer, make_service, web_manifest):
    service = make_service("web", team="storefront")
    response = login(viewer).post("/services/web/edit/", {"team": "mine", "manifest": web_manifest})
    assert response.status_code == 403
    service.refresh_from_db()
    assert service.team == "storefront"
    assert events("service.update", "denied", actor="vic").exists()


def test_it_asks_before_deleting_a_service(login, admin, make_service):
    make_service("web")
    body = text(login(admin).get("/services/web/delete/"))
    assert "Remove service web?" in body and "data-confirm=" in body


def test_it_deletes_a_service(login, admin, make_service):
    make_service("web")
    response = login(admin).post("/services/web/delete/")
    assert response.status_code == 302 and response.url == "/services/"
    assert not Service.objects.exists()
    assert events("service.delete", "success").exists()


def test_it_refuses_a_direct_delete_post_from_a_deployer(login, deployer, make_service):
    make_service("web")
    assert login(deployer).post("/services/web/delete/").status_code == 403
    assert Service.objects.exists()
    assert events("service.delete", "denied", actor="dee").exists()


def test_it_keeps_a_service_that_has_releases(login, admin, make_service):
    from deployments.models import Release

    service = make_service("web")
    Release.objects.create(service=service, version="1.0.0", image="registry.example.com/web:1.0.0")
    response = login(admin).post("/services/web/delete/", follow=True)
    assert response.status_code == 200 and "cannot be removed" in text(response)
    assert Service.objects.filter(name="web").exists()
    assert not events("service.delete", "success").exists()
