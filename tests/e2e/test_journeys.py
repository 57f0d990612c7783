"""Browser journeys: what a user does, end to end, in headless Chromium against the live server.

Each journey runs once. Jobs run in-process (portal.jobs.services.run_job), so no worker is needed.
"""
import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from deployments.actions import approve_deployment, request_deployment
from deployments.releases import register_release
from deployments.models import Deployment
from portal import kube
from portal.jobs.services import run_job

from .conftest import login

DIGEST = "sha256:" + "d" * 64


def image(version):
    return f"registry.example.com/shop/web:{version}@{DIGEST}"


def new_page(browser, live_server, username):
    """A separate browser (own cookies, own session) signed in as `username`."""
    context = browser.new_context(timezone_id="Asia/Seoul", locale="en-US")
    page = context.new_page()
    login(page, live_server, username)
    return page


def audit_actions(page):
    return page.locator("table.audit td code")


def run_in_background(job_id):
    """Run a job on another thread, as a worker would, so the pages can watch it progress."""

    def work():
        try:
            run_job(str(job_id))
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- (a) foundation

@pytest.mark.django_db(transaction=True)
def test_an_admin_creates_an_environment_and_finds_it_audited(page, live_server, admin):
    login(page, live_server, "ada")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.get_by_role("link", name="Create environment").click()
    page.get_by_label("Name", exact=True).fill("QA Berlin")
    page.get_by_label("Tier").select_option("staging")
    page.get_by_role("button", name="Create environment").click()
    expect(page).to_have_url(f"{live_server.url}/environments/qa-berlin/")
    expect(page.get_by_role("status")).to_contain_text("Environment QA Berlin created")

    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator("#tier-staging")).to_be_visible()
    expect(page.get_by_role("link", name="QA Berlin")).to_be_visible()

    page.get_by_role("link", name="Audit", exact=True).click()
    expect(audit_actions(page).filter(has_text=re.compile(r"^environment\.create$"))).to_have_count(1)
    expect(page.locator("table.audit")).to_contain_text("qa-berlin")


# ---------------------------------------------------------------- (b) approvals

@pytest.mark.django_db(transaction=True)
def test_two_approvers_approve_a_production_deployment(page, browser, live_server, make_user, make_env,
                                                       make_service, deployer, approver, viewer):
    make_user("omar", "approver")
    make_env("prod", tier="production", required_approvals=2, prevent_self_approval=True)
    make_service("web")
    release = register_release(deployer, {"service": "web", "version": "1.4.2", "image": image("1.4.2")})

    # The deployer asks for it through the form.
    login(page, live_server, "dee")
    page.get_by_role("link", name="Deployments", exact=True).click()
    page.get_by_role("link", name="Request a deployment").click()
    page.get_by_label("Service").select_option("web")
    page.get_by_role("button", name="Choose a release").click()
    page.get_by_label("Release").select_option(str(release.pk))
    page.get_by_label("Environment").select_option("prod")
    page.get_by_role("button", name="Request deployment").click()
    expect(page).to_have_url(re.compile(r"/deployments/\d+/$"))
    expect(page.locator("#deployment-state")).to_have_text("pending approval")
    expect(page.locator("#decision-panel")).to_contain_text("2 still needed")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)  # no self-approval
    deployment = Deployment.objects.get()

    # Two approvers, each in a browser of their own, find it in their inbox and approve it.
    for username, still_needed in (("abe", "1 still needed"), ("omar", None)):
        other = new_page(browser, live_server, username)
        badge = other.locator("#nav-approvals .nav-count")
        expect(badge).to_contain_text("1")  # the nav badge (a live fragment): one deployment waits for this approver
        other.get_by_role("link", name="Approvals").click()
        expect(other.locator("h1 .count")).to_have_text("1")
        other.get_by_role("link", name=f"#{deployment.pk}", exact=True).click()
        other.get_by_label("Comment").fill(f"looks good to {username}")
        other.get_by_role("button", name="Approve").click()
        panel = other.locator("#decision-panel")
        expect(panel).to_contain_text(f"looks good to {username}")  # swapped in place by htmx
        if still_needed:
            expect(panel).to_contain_text(still_needed)
            expect(other.locator("#deployment-state")).to_have_text("pending approval")
        else:
            expect(other.locator("#deployment-state")).to_have_text("queued")
        other.context.close()

    page.reload()
    expect(page.locator("#deployment-state")).to_have_text("queued")

    # The auditor sees who asked, who approved and the transition.
    auditor = new_page(browser, live_server, "vic")
    auditor.goto(f"{live_server.url}/audit/?environment=prod")
    actions = audit_actions(auditor)
    expect(actions.filter(has_text=re.compile(r"^deployment\.request$"))).to_have_count(1)
    expect(actions.filter(has_text=re.compile(r"^deployment\.approve$"))).to_have_count(2)
    expect(actions.filter(has_text=re.compile(r"^deployment\.queued$"))).to_have_count(1)
    expect(auditor.locator("table.audit")).to_contain_text("omar")
    auditor.context.close()


# ---------------------------------------------------------------- (c) blue-green and rollback

@pytest.mark.django_db(transaction=True)
def test_a_blue_green_deployment_flips_colour_and_rolls_back(page, browser, live_server, cluster, make_user, make_env,
                                                             make_service, deployer, approver):
    omar = make_user("omar", "approver")
    kube.ensure_namespace(cluster, "prod", {})
    prod = make_env("prod", tier="production", cluster=cluster, required_approvals=1, prevent_self_approval=True)
    make_service("web", strategy="blue-green")

    def request(version):
        release = register_release(deployer, {"service": "web", "version": version, "image": image(version)})
        return request_deployment(deployer, {"release": release.pk, "environment": prod.slug})

    for version in ("1.0.0", "1.1.0"):  # blue runs 1.0.0, then green 1.1.0
        deployment = approve_deployment(omar, request(version).pk)
        run_job(str(deployment.job_id))
        assert Deployment.objects.get(pk=deployment.pk).state == "succeeded"
    pending = request("1.2.0")

    # The approver reviews the dry run (the idle colour, blue, gets 1.2.0) and approves.
    login(page, live_server, "abe")
    page.goto(f"{live_server.url}/deployments/{pending.pk}/")
    expect(page.locator("#dry-run")).to_contain_text("server-side dry run passed")
    expect(page.locator("#dry-run")).to_contain_text("web-blue")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#deployment-state")).to_have_text("queued")

    # The job runs (as a worker would); its page follows the log.
    page.locator("#decision-panel").get_by_role("link", name="job").click()
    expect(page.locator("#job-summary")).to_contain_text("queued")
    job_id = Deployment.objects.get(pk=pending.pk).job_id
    worker = run_in_background(job_id)
    expect(page.locator("#job-log")).to_contain_text("traffic switched: Service web now selects color=blue",
                                                     timeout=15_000)
    expect(page.locator("#job-summary .state")).to_have_text("succeeded", timeout=15_000)
    worker.join(timeout=15)

    # The environment page shows blue live with 1.2.0, green idle with 1.1.0.
    page.goto(f"{live_server.url}/environments/prod/")
    live = page.locator("#env-live")
    expect(live.locator(".live-color")).to_contain_text("live: blue")
    expect(live).to_contain_text("1.2.0")

    # A deployer rolls back from the environment page; the colour flips back to green.
    deployer_page = new_page(browser, live_server, "dee")
    deployer_page.goto(f"{live_server.url}/environments/prod/")
    deployer_page.once("dialog", lambda dialog: dialog.accept())
    deployer_page.get_by_role("button", name="Roll back to 1.1.0").click()
    expect(deployer_page.locator("#deployment-state")).to_have_text("queued")
    rollback = Deployment.objects.get(kind="rollback")
    assert rollback.release.version == "1.1.0" and rollback.requested_by == deployer
    deployer_page.goto(f"{live_server.url}/environments/prod/")
    expect(deployer_page.locator("#env-live .live-color")).to_contain_text("live: blue")
    worker = run_in_background(rollback.job_id)
    # The live view polls every 5 s: the flip back shows without a reload.
    expect(deployer_page.locator("#env-live .live-color")).to_contain_text("live: green", timeout=15_000)
    worker.join(timeout=15)
    expect(deployer_page.locator("#env-live")).to_contain_text("rollback")
    deployer_page.context.close()
