import pytest
from django.contrib.auth import get_user_model

from tests.pages.conftest import text


def test_it_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_it_tells_a_user_without_a_role_to_ask_an_admin(login, nobody, make_env):
    make_env("dev-secret")
    body = text(login(nobody).get("/"))
    assert "You have no role yet" in body and "Ask an admin" in body
    assert "dev-secret" not in body and "Dev Secret" not in body


def test_it_groups_environments_by_tier_in_order(login, viewer, make_env):
    make_env("prod", tier="production")
    make_env("stage", tier="staging")
    make_env("pr-1", tier="preview")
    make_env("dev", tier="development")
    body = text(login(viewer).get("/"))
    positions = [body.index(f'id="tier-{tier}"') for tier in ("development", "preview", "staging", "production")]
    assert positions == sorted(positions)


def test_it_shows_each_environments_details(login, viewer, make_env, remote_cluster, deployer):
    make_env("team-a-dev", cluster=remote_cluster, owner=deployer, team="payments", namespace="ns-a")
    body = text(login(viewer).get("/"))
    for expected in ("Team A Dev", '<span class="badge tier tier-development">development</span>', "status-ready",
                     "remote", "ns-a", "dee", "payments"):
        assert expected in body


def test_it_counts_environments(login, viewer, make_env):
    make_env("a")
    make_env("b")
    make_env("c", tier="production")
    body = text(login(viewer).get("/"))
    assert 'Environments <span class="count">3</span>' in body


def test_it_shows_only_the_environments_a_scoped_user_may_see(login, make_user, make_env):
    mine = make_env("mine")
    make_env("theirs")
    body = text(login(make_user("sam", ("viewer", mine))).get("/"))
    assert 'href="/environments/mine/"' in body
    assert 'href="/environments/theirs/"' not in body


def test_it_shows_the_service_catalog(login, viewer, make_service):
    make_service("web", team="storefront", strategy="blue-green")
    body = text(login(viewer).get("/"))
    assert 'href="/services/web/"' in body and "storefront" in body and "blue-green" in body


def test_it_offers_deployers_to_create_the_first_environment(login, deployer):
    body = text(login(deployer).get("/"))
    assert "No environments yet" in body
    assert '<a href="/environments/new/">Create one</a>' in body


def test_it_does_not_offer_viewers_to_create_environments(login, viewer):
    body = text(login(viewer).get("/"))
    assert "No environments yet" in body
    assert "/environments/new/" not in body


@pytest.mark.parametrize("count", [3, 30])
def test_it_costs_the_same_queries_for_3_and_30_environments(login, viewer, make_env, remote_cluster, make_service,
                                                            count, django_assert_max_num_queries):
    owner = get_user_model().objects.create_user("owner")
    for i in range(count):
        make_env(f"env-{i}", tier=("development", "staging", "production", "preview")[i % 4],
                 cluster=remote_cluster, owner=owner, namespace=f"ns-{i}")
        make_service(f"svc-{i}")
    client = login(viewer)
    with django_assert_max_num_queries(11):  # the page's 6, and the live board's cells, marks, versions, settings
        response = client.get("/")
    assert response.content.decode().count('href="/environments/env-') == count
