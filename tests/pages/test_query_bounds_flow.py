"""Lists of deployments cost the same queries for 3 rows as for 30."""
import pytest
from django.utils import timezone

from deployments.models import Deployment, Release

pytestmark = pytest.mark.django_db


def seed(make_env, make_service, deployer, services):
    env = make_env("prod", tier="production")
    for n in range(services):
        service = make_service(f"svc-{n}")
        for version in ("1.0.0", "1.1.0"):
            release = Release.objects.create(service=service, version=version, image=f"svc:{version}",
                                             created_by=deployer)
            Deployment.objects.create(release=release, environment=env, service=service, state="succeeded",
                                      image=release.image, manifest_hash="h", requested_by=deployer,
                                      finished_at=timezone.now())
    return env


def count_queries(client, django_assert_max_num_queries, url, bound):
    with django_assert_max_num_queries(bound):
        response = client.get(url)
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("services", [3, 30])
def test_the_live_view_does_not_grow_with_services(client, make_env, make_service, deployer,
                                                   django_assert_max_num_queries, services):
    seed(make_env, make_service, deployer, services)
    client.force_login(deployer)
    response = count_queries(client, django_assert_max_num_queries, "/environments/prod/live/", 10)
    assert response.content.decode().count("svc-") >= services


@pytest.mark.parametrize("services", [3, 30])
def test_the_deployments_api_does_not_grow_with_rows(api, make_env, make_service, deployer,
                                                     django_assert_max_num_queries, services):
    seed(make_env, make_service, deployer, services)
    client = api(deployer)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/deployments", {"limit": 500})
    assert len(response.json()) == 2 * services
