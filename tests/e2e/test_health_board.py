"""The board keeps itself true: a cell changes colour without a reload, shows an automatic rollback, and grows new columns and rows."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from deployments.models import Deployment
from deployments.monitoring import probing
from deployments.monitoring import verification as verifying
from deployments.monitoring.models import Verification
from tests.health.conftest import deploy, run_rollback_job, seed_cells

from .conftest import login


@pytest.fixture
def staging(make_env, cluster):
    from portal import kube

    kube.ensure_namespace(cluster, "staging", {})
    return make_env("staging", tier="staging", cluster=cluster, required_approvals=0)


def _fail_verification(deployment):
    v = Verification.objects.get(deployment=deployment)
    for seconds in (0, 15, 30):
        verifying.evaluate(v.pk, now=v.started_at + timedelta(seconds=seconds))


@pytest.mark.django_db(transaction=True)
def test_a_cell_changes_colour_without_reload_and_shows_the_rollback(page, live_server, viewer, deployer, staging,
                                                                    make_service, sandbox):
    make_service("web", team="shop")
    first = deploy(deployer, staging, "1.0.0")
    v = Verification.objects.get(deployment=first)
    verifying.evaluate(v.pk, now=v.ends_at)  # 1.0.0 passed its verification
    login(page, live_server, "vic")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/")
    cell = page.locator(".board-table .cell").first
    expect(cell).to_have_class("cell cell-healthy")
    healthy_colour = cell.evaluate("e => getComputedStyle(e).borderLeftColor")
    page.evaluate("window.pageMarker = 1")

    sandbox.set_fault("web", "fail_probe")
    for _ in range(3):
        probing.probe_environments([staging.pk])
    expect(cell).to_have_class("cell cell-down", timeout=5000)
    assert cell.evaluate("e => getComputedStyle(e).borderLeftColor") != healthy_colour
    cell.locator("a.cell-link").focus()  # the reason shows on focus
    expect(cell.locator(".cell-reason")).to_be_visible()
    expect(cell.locator(".cell-reason")).to_contain_text("/health answered HTTP 503")

    sandbox.set_fault("web", "clear")
    second = deploy(deployer, staging, "2.0.0")
    sandbox.set_fault("web", "fail_probe")
    _fail_verification(second)
    sandbox.set_fault("web", "clear")
    run_rollback_job(Deployment.objects.get(rollback_of=second))
    probing.probe_environments([staging.pk])
    expect(cell.locator(".rolled-back")).to_contain_text("rolled back (auto)", timeout=5000)
    expect(cell).to_contain_text("1.0.0")
    assert page.evaluate("window.pageMarker") == 1  # no reload
    # at 390 px the board scrolls inside its own box; the page itself does not grow sideways
    assert page.locator(".board-wrap").evaluate("e => e.getBoundingClientRect().right") <= 390


@pytest.mark.django_db(transaction=True)
def test_a_new_environment_and_a_new_service_appear_on_the_board_without_reload(page, live_server, viewer, make_env,
                                                                               make_service):
    first_env, first_service = make_env("env-a"), make_service("svc-a")
    seed_cells([first_env], [first_service], viewer)
    login(page, live_server, "vic")
    page.goto(f"{live_server.url}/")
    expect(page.locator(f"#cell-{first_env.pk}-{first_service.pk}")).to_have_class("cell cell-down")
    page.evaluate("window.pageMarker = 1")

    new_env = make_env("env-new", tier="production")  # a column, nothing deployed in it yet
    expect(page.locator(".board-table thead a", has_text="Env New")).to_be_visible(timeout=5000)
    new_service = make_service("svc-new")
    seed_cells([new_env], [new_service], viewer)  # deployed for the first time: a row
    expect(page.locator(".board-table tbody th a", has_text="svc-new")).to_be_visible(timeout=5000)
    expect(page.locator(f"#cell-{new_env.pk}-{new_service.pk}")).to_contain_text("1.0.0")
    assert page.evaluate("window.pageMarker") == 1  # no reload
