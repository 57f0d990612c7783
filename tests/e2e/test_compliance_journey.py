"""Journey: an auditor opens a production deployment, downloads its evidence pack and opens the
separation-of-duties report."""
import io
import json
import re
import zipfile

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from deployments.actions import approve_deployment, request_deployment
from deployments.models import Deployment
from deployments.releases import register_release
from portal import kube
from portal.jobs.services import run_job

from .conftest import login

IMAGE = "registry.example.com/shop/web:2.0.0@sha256:" + "e" * 64


@pytest.mark.django_db(transaction=True)
def test_an_auditor_takes_away_a_pack_and_reads_the_sod_report(page, live_server, cluster, make_user, make_env,
                                                               make_service, tmp_path):
    kube.ensure_namespace(cluster, "prod", {})
    make_env("prod", tier="production", cluster=cluster, required_approvals=1, prevent_self_approval=False)
    make_service("web")
    dee = make_user("dee", "deployer")
    make_user("audrey", "viewer")
    release = register_release(dee, {"service": "web", "version": "2.0.0", "image": IMAGE, "git_sha": "9f8e7d6"})
    deployment = request_deployment(dee, {"release": release.pk, "environment": "prod"})
    approve_deployment(make_user("dana", ("approver", deployment.environment)), deployment.pk, comment="ok")
    run_job(str(Deployment.objects.get(pk=deployment.pk).job_id))
    # and an admin's break-glass override, approved by two approvers: a finding for the report
    ada = make_user("ada", "admin")
    hotfix = register_release(ada, {"service": "web", "version": "2.0.1", "image": IMAGE.replace("2.0.0", "2.0.1")})
    glass = request_deployment(ada, {"release": hotfix.pk, "environment": "prod",
                                     "break_glass": {"reason": "payments hotfix"}})
    approve_deployment(make_user("abe2", ("approver", deployment.environment)), glass.pk)

    login(page, live_server, "audrey")
    page.get_by_role("link", name="Deployments", exact=True).click()
    page.get_by_role("link", name=re.compile(rf"#{deployment.pk}\b")).first.click()
    page.get_by_role("link", name="Evidence pack").click()
    expect(page.locator(".evidence-integrity")).to_contain_text("verified")
    expect(page.locator(".evidence-statements")).to_contain_text("Approved by dana")
    expect(page.locator(".evidence-statements")).to_contain_text("1 approval(s) required")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download pack (ZIP)").click()
    path = tmp_path / "pack.zip"
    download_info.value.save_as(path)
    pack = json.loads(zipfile.ZipFile(io.BytesIO(path.read_bytes())).read("pack.json"))
    assert pack["deployment"]["id"] == deployment.pk
    call_command("evidence_verify", str(path), stdout=io.StringIO())  # exits non-zero when not intact

    page.get_by_role("link", name="Compliance").click()
    expect(page.get_by_role("heading", name="Separation of duties")).to_be_visible()
    break_glass = page.locator("section", has=page.locator("#h-break_glass"))
    expect(break_glass).to_contain_text("payments hotfix")
    expect(break_glass).to_contain_text(f"#{glass.pk} web 2.0.1")
    independent = page.locator("section", has=page.locator("#h-without_independent_approval"))
    expect(independent).to_contain_text("None in this period.")  # dana approved the first one
    break_glass.get_by_role("link", name="Evidence pack").click()
    expect(page.locator(".evidence-statements")).to_contain_text("BREAK-GLASS override requested by ada: payments hotfix")
