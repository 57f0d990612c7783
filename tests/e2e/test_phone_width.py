"""Every page the issue names works at 390 px (a phone): no sideways page scroll, the navigation folds
behind a Menu button, key columns stay on screen; and axe finds no serious or critical problem."""
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from deployments import releases
from deployments.actions import request_deployment
from deployments.models import Deployment
from deployments.monitoring.models import CellHealth
from deployments.rendering import manifest_hash, render_text

from .a11y import assert_accessible
from .conftest import login

PHONE = {"width": 390, "height": 844}
DIGEST = "sha256:" + "f" * 64


def image(version):
    return f"registry.example.com/shop/web-frontend-with-a-long-name:{version}@{DIGEST}"


def page_width(page):
    return page.evaluate("document.scrollingElement.scrollWidth")


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(viewport=PHONE, timezone_id="Asia/Seoul", locale="en-US")
    yield context.new_page()
    context.close()


@pytest.fixture
def production(make_env, make_service, deployer, make_user):
    make_user("omar", "approver")
    prod = make_env("production-eu-west", tier="production", required_approvals=2, prevent_self_approval=True,
                    checklist=["Database migration reviewed by the on-call DBA"])
    service = make_service("web-frontend-with-a-long-name", strategy="blue-green")
    for version, color in (("1.0.0", "blue"), ("1.1.0", "green")):
        release = releases.register_release(deployer, {"service": service.name, "version": version,
                                                       "image": image(version)})
        Deployment.objects.create(
            release=release, environment=prod, service=service, requested_by=deployer, state="succeeded",
            image=release.image, manifest_hash=manifest_hash(service, release, prod),
            rendered_manifest=render_text(service, release, prod), color=color,
            started_at=timezone.now(), finished_at=timezone.now())
    now = timezone.now()
    CellHealth.objects.create(environment=prod, service=service, status="degraded", ready_replicas=2,
                              desired_replicas=3, color="green", checked_at=now, since=now, changed_at=now,
                              reason="2 of 3 replicas ready: readiness probe failed on one pod")
    release = releases.register_release(deployer, {"service": service.name, "version": "1.2.0",
                                                   "image": image("1.2.0")})
    pending = request_deployment(deployer, {"release": release.pk, "environment": prod.slug})
    return prod, pending


@pytest.mark.django_db(transaction=True)
def test_the_pages_fit_a_phone_and_pass_axe(phone, live_server, admin, production):
    prod, pending = production
    login(phone, live_server, "ada")
    for path in ("/", f"/environments/{prod.slug}/", f"/deployments/{pending.pk}/", "/audit/", "/jobs/",
                 "/environments/", "/deployments/"):
        phone.goto(f"{live_server.url}{path}")
        if path == f"/environments/{prod.slug}/":
            expect(phone.locator("#env-live")).to_contain_text("1.1.0")  # the lazily loaded live view
        assert page_width(phone) <= PHONE["width"], f"{path} is {page_width(phone)} px wide"
        assert_accessible(phone)


@pytest.mark.django_db(transaction=True)
def test_the_navigation_folds_behind_a_menu_button(phone, live_server, admin):
    login(phone, live_server, "ada")
    menu = phone.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(phone.get_by_role("link", name="Audit", exact=True)).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(phone.get_by_role("link", name="Audit", exact=True)).to_be_visible()
    phone.get_by_role("link", name="Audit", exact=True).click()
    expect(phone.get_by_role("heading", name="Audit log")).to_be_visible()


@pytest.mark.django_db(transaction=True)
def test_the_production_page_shows_health_colours_and_rollback_on_screen(phone, live_server, deployer, production):
    prod, _ = production
    login(phone, live_server, "dee")
    phone.goto(f"{live_server.url}/environments/{prod.slug}/")
    row = phone.locator("#env-live tbody tr").first
    for visible in (row.locator(".health-degraded"), row.locator(".live-color"),
                    row.get_by_role("button", name="Roll back to 1.0.0")):
        expect(visible).to_be_visible()
        box = visible.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
