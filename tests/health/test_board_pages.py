"""The board on the dashboard, its live updates, the service-in-environment page, the verification panel."""
import re

import pytest
from django.test import Client

from deployments.monitoring import probing
from deployments.monitoring.models import CellHealth

from .conftest import deploy, seed_cells

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


# ---------------------------------------------------------------- the board at size: queries, new rows and columns

def board_poll(client, path="/"):
    body = html(client.get(path))
    url = re.search(r'id="board-updates"[^>]*hx-get="([^"]*)"', body).group(1).replace("&amp;", "&")
    version = re.search(r'id="board-updates"[^>]*data-live-version="([^"]*)"', body).group(1)
    return body, url, {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "board-updates", "HTTP_IF_NONE_MATCH": f'"{version}"'}


def board_queries(client):
    """Queries of: the dashboard, a 304 poll, a poll sending changed cells, a poll sending the whole grid."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    counts = {}
    with CaptureQueriesContext(connection) as page:
        _body, url, headers = board_poll(client)
    counts["page"] = len(page)
    with CaptureQueriesContext(connection) as poll:
        assert client.get(url, **headers).status_code == 304
    counts["304"] = len(poll)
    cell = CellHealth.objects.order_by("pk").first()
    CellHealth.objects.filter(pk=cell.pk).update(status="degraded", changed_at=timezone.now(), version=cell.version + 1)
    with CaptureQueriesContext(connection) as poll:
        answer = client.get(url, **headers)
    assert answer.status_code == 200 and 'id="board-grid"' not in answer.content.decode()
    counts["cells"] = len(poll)
    with CaptureQueriesContext(connection) as poll:
        answer = client.get(url.replace("shape=", "shape=old"), **headers)
    assert 'id="board-grid" hx-swap-oob="true"' in answer.content.decode()
    counts["grid"] = len(poll)
    return counts


def test_the_board_and_its_polls_cost_the_same_queries_at_any_size(viewer_client, viewer, make_env, make_service):
    envs = [make_env(f"env-{k}", tier=("development", "staging", "production")[k % 3]) for k in range(2)]
    services = [make_service(f"svc-{k}") for k in range(3)]
    seed_cells(envs, services, viewer)
    small = board_queries(viewer_client)
    envs += [make_env(f"env-{k}", tier=("development", "staging", "production")[k % 3]) for k in range(2, 9)]
    services += [make_service(f"svc-{k}") for k in range(3, 8)]
    seed_cells(envs, services, viewer)
    large = board_queries(viewer_client)
    assert CellHealth.objects.count() == 9 * 8
    assert small == large, (small, large)
    body = html(viewer_client.get("/"))
    assert body.count('class="cell cell-') == 9 * 8 and body.count("rolled back (auto)") == 9
    assert body.count('class="badge pending-mark"') == 9 and body.count('class="badge color-blue"') == 9


def test_a_new_environment_or_service_shows_on_the_next_poll_without_reload(viewer_client, viewer, make_env, make_service):
    envs, services = [make_env("env-a")], [make_service("svc-a")]
    seed_cells(envs, services, viewer)
    _body, url, headers = board_poll(viewer_client)
    assert viewer_client.get(url, **headers).status_code == 304
    new_env = make_env("env-new", tier="production")  # a column, nothing deployed in it yet
    answer = viewer_client.get(url, **headers)
    text = answer.content.decode()
    assert answer.status_code == 200 and 'id="board-grid" hx-swap-oob="true"' in text
    assert 'href="/environments/env-new/"' in text and f'id="cell-{new_env.pk}-{services[0].pk}"' in text
    url = re.search(r'id="board-updates"[^>]*hx-get="([^"]*)"', text).group(1).replace("&amp;", "&")
    headers["HTTP_IF_NONE_MATCH"] = answer["ETag"]
    assert viewer_client.get(url, **headers).status_code == 304  # the new shape is the page's now
    new_service = make_service("svc-new")
    seed_cells([new_env], [new_service], viewer)  # deployed for the first time: a row
    text = viewer_client.get(url, **headers).content.decode()
    assert 'id="board-grid" hx-swap-oob="true"' in text and 'href="/services/svc-new/"' in text
    assert f'id="cell-{new_env.pk}-{new_service.pk}"' in text


def test_a_row_a_filter_now_shows_arrives_on_the_next_poll(viewer_client, viewer, make_env, make_service):
    from django.utils import timezone

    env = make_env("env-a")
    seed_cells([env], [make_service("svc-a"), make_service("svc-b"), make_service("svc-c")], viewer)
    calm = CellHealth.objects.filter(status="healthy").order_by("pk").first()
    body, url, headers = board_poll(viewer_client, "/?problems=1")
    assert f'id="cell-{env.pk}-{calm.service_id}"' not in body
    CellHealth.objects.filter(pk=calm.pk).update(status="down", changed_at=timezone.now(), version=calm.version + 1)
    text = viewer_client.get(url, **headers).content.decode()
    assert 'id="board-grid" hx-swap-oob="true"' in text and f'id="cell-{env.pk}-{calm.service_id}"' in text


def test_a_cell_committed_after_the_pages_latest_change_is_still_sent(viewer_client, viewer, make_env, make_service):
    """A probe's transaction may commit after a poll read the latest change, carrying an earlier time."""
    from datetime import timedelta

    env = make_env("env-a")
    seed_cells([env], [make_service("svc-a"), make_service("svc-b")], viewer)
    _body, url, headers = board_poll(viewer_client)
    cell = CellHealth.objects.order_by("pk").first()
    CellHealth.objects.filter(pk=cell.pk).update(status="degraded", reason="late <b>commit</b>",
                                                 changed_at=cell.changed_at - timedelta(seconds=2), version=cell.version + 1)
    answer = viewer_client.get(url, **headers)
    text = answer.content.decode()
    assert answer.status_code == 200 and f'id="cell-{env.pk}-{cell.service_id}" class="cell cell-degraded"' in text
    assert "late &lt;b&gt;commit&lt;/b&gt;" in text and "<b>commit" not in text


def test_a_deployment_leaving_the_open_states_clears_its_mark_on_the_next_poll(viewer_client, viewer, make_env, make_service):
    from deployments.models import Deployment

    env = make_env("env-a")
    services = [make_service("svc-a"), make_service("svc-b")]
    seed_cells([env], services, viewer)
    body, url, headers = board_poll(viewer_client)
    assert body.count('class="badge pending-mark"') == 1
    assert viewer_client.get(url, **headers).status_code == 304
    queued = Deployment.objects.get(state="queued")
    queued.state = "cancelled"
    queued.save(update_fields=["state", "updated_at"])
    answer = viewer_client.get(url, **headers)
    text = answer.content.decode()
    assert answer.status_code == 200 and f'id="cell-{env.pk}-{services[0].pk}"' in text and "pending-mark" not in text


def test_a_scoped_viewer_sees_only_their_columns_and_is_not_woken_by_others(make_user, viewer, make_env, make_service):
    from django.utils import timezone

    mine, other = make_env("env-mine"), make_env("env-other")
    services = [make_service("svc-a"), make_service("svc-b")]
    seed_cells([mine, other], services, viewer)
    client = Client()
    client.force_login(make_user("sam", ("viewer", mine)))
    body, url, headers = board_poll(client)
    assert f'id="cell-{mine.pk}-{services[0].pk}"' in body and f'id="cell-{other.pk}-' not in body
    hidden = CellHealth.objects.get(environment=other, service=services[0])
    CellHealth.objects.filter(pk=hidden.pk).update(status="down", changed_at=timezone.now(), version=hidden.version + 1)
    assert client.get(url, **headers).status_code == 304  # a change they cannot see does not wake their board
    seen = CellHealth.objects.get(environment=mine, service=services[1])
    CellHealth.objects.filter(pk=seen.pk).update(status="degraded", changed_at=timezone.now(), version=seen.version + 1)
    text = client.get(url, **headers).content.decode()
    assert f'id="cell-{mine.pk}-{services[1].pk}" class="cell cell-degraded"' in text and f"cell-{other.pk}-" not in text
