"""A button's `next` field sends the user back only to a page of this site (portal.pages.safe_next),
for every page that offers one: a crafted form cannot redirect elsewhere."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "javascript:alert(1)"])
def test_a_next_outside_the_site_falls_back_to_the_environment(login, deployer, make_env, target):
    make_env("pr-1", owner=deployer)
    response = login(deployer).post("/environments/pr-1/extend/", {"hours": "x", "next": target})
    assert response.status_code == 302 and response["Location"] == "/environments/pr-1/"


def test_a_next_on_the_site_is_followed(login, deployer, make_env):
    make_env("pr-1", owner=deployer)
    response = login(deployer).post("/environments/pr-1/extend/", {"hours": "x", "next": "/environments/"})
    assert response.status_code == 302 and response["Location"] == "/environments/"
