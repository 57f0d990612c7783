"""The board on the dashboard, its live updates, the service-in-environment page, the verification panel."""
import re

import pytest
from django.test import Client

from deployments.monitoring import probing
from deployments.monitoring.models import CellHealth

from .conftest import deploy

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(viewer):
    client = Client()
    client.force_login(viewer)
    return client


def html(response):
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_board_shows_release_status_and_reason(viewer_client, deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")
    sandbox.set_fault("web", "fail_probe")
    probing.probe_environments([staging.pk])
    body = html(viewer_client.get("/"))
    cell = CellHealth.objects.get()
    block = body[body.index(f'id="cell-{staging.pk}-{web.pk}"'):]
    block = block[:block.index("</td>")]
    assert "1.0.0" in block and "health-degraded" in block
    assert "/health answered HTTP 503" in block  # the reason, shown on hover and focus
    assert 'href="/environments/staging/services/web/health/"' in block
    assert 'scope="colgroup"' in body and "tier-staging" in body
    assert cell.status == "degraded"


def test_the_board_filters_stay_in_the_url(viewer_client, deployer, staging, web, make_service, make_env, cluster):
    deploy(deployer, staging, "1.0.0")
    make_service("api", team="platform")
    body = html(viewer_client.get("/", {"status": "down"}))
    assert "Nothing matches these filters" in body
    assert 'value="down" selected' in body
    assert "status=down" in re.search(r'id="board-updates"[^>]*hx-get="([^"]*)"', body).group(1)
    body = html(viewer_client.get("/", {"team": "shop"}))
    assert 'href="/services/web/"' in body and 'href="/services/api/"' not in body.split('id="board-heading"')[1].split("</section>")[0]


def test_the_board_costs_the_same_queries_for_more_services(viewer_client, deployer, staging, web, make_service, make_env,
                                                           django_assert_max_num_queries):
    deploy(deployer, staging, "1.0.0")
    for index in range(20):
        make_service(f"svc-{index}")
        make_env(f"env-{index}")
    with django_assert_max_num_queries(25):
        html(viewer_client.get("/"))


def test_an_update_poll_is_304_until_a_cell_changes_then_sends_only_that_cell(viewer_client, deployer, staging, web, make_service, sandbox):
    deploy(deployer, staging, "1.0.0")
    body = html(viewer_client.get("/"))
    url = re.search(r'id="board-updates"[^>]*hx-get="([^"]*)"', body).group(1).replace("&amp;", "&")
    version = re.search(r'id="board-updates"[^>]*data-live-version="([^"]*)"', body).group(1)
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "board-updates", "HTTP_IF_NONE_MATCH": f'"{version}"'}
    assert viewer_client.get(url, **headers).status_code == 304
    sandbox.set_fault("web", "fail_probe")
    probing.probe_environments([staging.pk])
    answer = viewer_client.get(url, **headers)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert text.count('hx-swap-oob="true"') == 1
    assert f'id="cell-{staging.pk}-{web.pk}"' in text and "health-degraded" in text


def test_the_service_page_shows_status_chart_availability_and_changes(viewer_client, deployer, staging, web, sandbox):
    first = deploy(deployer, staging, "1.0.0")
    sandbox.set_fault("web", "fail_probe")
    probing.probe_environments([staging.pk])
    body = html(viewer_client.get("/environments/staging/services/web/health/"))
    assert "health-degraded" in body and "/health answered HTTP 503" in body
    assert "<svg" in body and 'class="band band-degraded"' in body  # the minute of the failed probe is degraded at worst
    assert 'class="deploy-mark"' in body and f"#{first.pk} 1.0.0" in body
    assert "50.0 %" in body  # availability over 24 h: one probe of two failed
    assert "degraded" in body.split('id="changes-heading"')[1]


def test_the_service_page_is_404_for_unknown_or_hidden_things(viewer_client, make_user, staging, web, make_env):
    assert viewer_client.get("/environments/nope/services/web/health/").status_code == 404
    other = make_env("other")
    scoped = Client()
    scoped.force_login(make_user("sam", ("viewer", other)))
    assert scoped.get("/environments/staging/services/web/health/").status_code == 404


def test_the_deployment_page_shows_its_verification(viewer_client, deployer, staging, web):
    first = deploy(deployer, staging, "1.0.0")
    page = html(viewer_client.get(f"/deployments/{first.pk}/"))
    assert f'hx-get="/deployments/{first.pk}/verification/"' in page
    panel = html(viewer_client.get(f"/deployments/{first.pk}/verification/", HTTP_HX_REQUEST="true"))
    assert "verification-running" in panel and "Metric rules are off" in panel
    assert "data-live-version" in panel  # it keeps itself up to date while it runs
