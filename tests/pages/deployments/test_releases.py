"""The release list and the release form; labels on every form of these pages."""
import pytest

from deployments.models import Release
from deployments.releases import register_release
from tests.pages.conftest import events, text
from tests.pages.deployments.helpers import ask, deployed, image
from tests.pages.test_layout import FormControls

# ---------------------------------------------------------------- releases

def test_the_release_list_shows_image_sha_and_who_registered(login, viewer, deployer, web):
    register_release(deployer, {"service": "web", "version": "1.4.2", "image": image("1.4.2"),
                                           "git_sha": "3f2a9c1"})
    body = text(login(viewer).get("/releases/"))
    assert "1.4.2" in body and image("1.4.2") in body and "3f2a9c1" in body and "by dee" in body
    assert "/releases/new/" not in body


def test_a_deployer_registers_a_release_through_the_form(login, deployer, web):
    response = login(deployer).post("/releases/new/", {"service": "web", "version": "2.0.0", "image": image("2.0.0"),
                                                       "git_sha": "0123abc", "notes": "New checkout"})
    assert response.status_code == 302 and response.url == "/releases/?service=web"
    assert Release.objects.get().created_by == deployer
    assert events("release.create", "success", actor="dee").exists()


def test_the_release_form_shows_errors(login, deployer, web):
    response = login(deployer).post("/releases/new/", {"service": "web", "version": "2", "image": "Not An Image"})
    assert response.status_code == 400 and "is not a valid OCI image reference" in text(response)
    assert not Release.objects.exists()


def test_the_release_form_is_refused_to_viewers(login, viewer, web):
    assert login(viewer).get("/releases/new/").status_code == 403
    assert login(viewer).post("/releases/new/", {"service": "web", "version": "1", "image": "web:1"}).status_code == 403
    assert events("release.create", "denied", actor="vic").exists()


# ---------------------------------------------------------------- layout

@pytest.mark.parametrize("url", ["/approvals/", "/deployments/", "/deployments/new/", "/deployments/new/?service=web",
                                 "/releases/", "/releases/new/", "/environments/prod/history/",
                                 "/environments/prod/live/", "DEPLOYMENT", "LIVE"])
def test_every_form_control_has_a_label(login, admin, deployer, prod, web, url):
    deployed(deployer, prod, "1.0.0", minutes_ago=60)
    live = deployed(deployer, prod, "1.1.0", minutes_ago=5)
    pending = ask(deployer, prod, "1.2.0")
    url = {"DEPLOYMENT": f"/deployments/{pending.pk}/", "LIVE": f"/deployments/{live.pk}/"}.get(url, url)
    response = login(admin).get(url)
    assert response.status_code == 200
    parser = FormControls()
    parser.feed(text(response))
    assert parser.missing() == [] and parser.fake_buttons == []
