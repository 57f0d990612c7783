"""Browser journey: a developer creates a preview environment from the form and watches it become ready."""
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from portal.jobs.models import Job
from portal.jobs.services import run_job

from .conftest import login


@pytest.mark.django_db(transaction=True)
def test_a_developer_creates_a_preview_environment_and_watches_it_become_ready(page, live_server, deployer, cluster,
                                                                               sandbox):
    from environments.models import EnvironmentTemplate
    from environments.template_defaults import seed_templates

    seed_templates(EnvironmentTemplate)  # a transactional test flushes what the data migration seeded
    login(page, live_server, "dee")
    page.goto(f"{live_server.url}/environments/request/?template=preview")
    expect(page.get_by_text("requests.cpu, from 500m to 4; default 2")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("PR 500!")
    expect(page.locator("#request-ok")).to_contain_text("pr-500 is free and every value is within bounds")
    page.locator("#id_param_cpu").fill("9")
    expect(page.locator("#request-problems")).to_contain_text("9 is above the maximum of 4 set by template 'preview'")
    page.locator("#id_param_cpu").fill("1")
    expect(page.locator("#request-ok")).to_be_visible()
    page.get_by_role("button", name="Create environment").click()

    page.wait_for_url(f"{live_server.url}/environments/pr-500/provisioning/")
    expect(page.get_by_role("heading", name="Provisioning")).to_be_visible()

    job = Job.objects.get(kind="environment.provision", target_repr="pr-500")

    def work():
        try:
            run_job(str(job.pk))
        finally:
            connection.close()

    threading.Thread(target=work, daemon=True).start()
    section = page.locator("#provisioning")
    expect(section).to_contain_text("✓ ResourceQuota gantry-quota", timeout=15000)
    expect(section).to_contain_text("✓ RoleBinding gantry-team")
    expect(page.locator("#provisioning-heading")).to_contain_text("Ready")
    expect(section).to_contain_text("is ready: namespace pr-500")
    section.get_by_role("link", name="Open the environment").click()
    expect(page.get_by_text("Quota use")).to_be_visible()
    expect(page.locator("#env-quota")).to_contain_text("requests.cpu")
    assert sandbox.get("resourcequotas", "gantry-quota", "pr-500")["spec"]["hard"]["requests.cpu"] == "1"
