"""axe-core over EVERY page of the product, at desktop width and at 390 px (a phone), in one browser.

One test, one browser, two contexts (desktop and phone), so it stays quick: each page is opened once
per width, axe runs on it and fails on any violation (minor ones too: every page is clean), and at
390 px the page must not scroll sideways. Every problem found on
every page is reported together, so one run shows the whole list.

When a page is added to Gantry, add it to `pages()`.
"""
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import releases
from deployments.actions import request_deployment
from deployments.models import Deployment, Release
from deployments.monitoring.models import CellHealth
from deployments.rendering import manifest_hash, render_text
from environments.backups.models import Backup, BackupTarget, Drill, Restore
from environments.models import Cluster, EnvironmentTemplate
from portal.jobs.models import Job, JobLogLine

from .a11y import EVERY_IMPACT, describe, violations
from .conftest import login

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
DIGEST = "sha256:" + "a" * 64


def image(version):
    return f"registry.example.com/shop/web:{version}@{DIGEST}"


@pytest.fixture
def product(make_env, make_service, make_user, deployer, approver):
    """A little of everything, so each page shows its tables, badges, forms and buttons."""
    admin = make_user("ada", "admin")
    make_user("vic", "viewer")
    prod = make_env("production", tier="production", required_approvals=2, prevent_self_approval=True,
                    checklist=["Database migration reviewed"])
    staging = make_env("staging", tier="staging", required_approvals=0)
    make_env("team-dev", status="provisioning")
    make_env("big-staging", tier="staging", status="requested", required_approvals=1)
    web = make_service("web", strategy="blue-green")
    now = timezone.now()
    done = []
    for version, color, env in (("1.0.0", "blue", prod), ("1.1.0", "green", prod), ("1.1.0", "", staging)):
        release = (Release.objects.filter(version=version).first()
                   or releases.register_release(deployer, {"service": "web", "version": version, "image": image(version)}))
        done.append(Deployment.objects.create(
            release=release, environment=env, service=web, requested_by=deployer, state="succeeded",
            image=release.image, manifest_hash=manifest_hash(web, release, env),
            rendered_manifest=render_text(web, release, env), color=color, started_at=now - timedelta(minutes=3),
            finished_at=now - timedelta(minutes=2)))
    CellHealth.objects.create(environment=prod, service=web, deployment=done[1], status="degraded",
                              reason="2 of 3 replicas ready", since=now, checked_at=now, changed_at=now,
                              color="green", ready_replicas=2, desired_replicas=3)
    release = releases.register_release(deployer, {"service": "web", "version": "1.2.0", "image": image("1.2.0")})
    pending = request_deployment(deployer, {"release": release.pk, "environment": prod.slug})
    job = Job.objects.create(kind="environment.provision", state="failed", environment=prod, requested_by=admin,
                             target_type="environments.environment", target_repr="production", error="quota exceeded",
                             started_at=now - timedelta(seconds=65), finished_at=now)
    JobLogLine.objects.create(job=job, message="applying Namespace production")
    JobLogLine.objects.create(job=job, message="quota exceeded", level="error")
    target = BackupTarget(environment=prod, name="orders-db", dsn_display="app@db:5432/orders",
                          destination={"kind": "local", "path": "/tmp/gantry-axe"}, created_by=admin)
    target.dsn = "postgres://app:secret@db:5432/orders"
    target.save()
    backup = Backup.objects.create(target=target, state="succeeded", requested_by=admin, size_bytes=123456,
                                   sha256="b" * 64, started_at=now - timedelta(minutes=5), finished_at=now,
                                   key="orders-db/1.dump", location="/tmp/gantry-axe/orders-db/1.dump")
    drill = Drill.objects.create(backup=backup, state="succeeded", requested_by=admin, restore_seconds=12.5,
                                 checks=[{"name": "tables", "ok": True, "detail": "4 tables"}],
                                 started_at=now, finished_at=now)
    Restore.objects.create(backup=backup, state="pending_approval", database="orders_copy",
                           destination_display="app@db:5432/orders_copy", requested_by=deployer)
    Cluster.objects.create(name="remote", mode="server", server="https://10.0.0.1:6443")
    template = EnvironmentTemplate.objects.order_by("name").first()
    return {"prod": prod, "pending": pending, "succeeded": done[1], "job": job, "backup": backup, "drill": drill,
            "template": template}


def pages(p):
    """Every page of the product (path, what to wait for before axe runs: a lazily loaded fragment)."""
    prod, template = p["prod"].slug, p["template"]
    return [
        ("/", None),
        ("/environments/", None),
        ("/environments/new/", None),
        ("/environments/request/", None),
        (f"/environments/{prod}/", "#env-live table"),
        (f"/environments/{prod}/edit/", None),
        (f"/environments/{prod}/delete/", None),
        (f"/environments/{prod}/history/", None),
        (f"/environments/{prod}/services/web/health/", None),
        (f"/environments/{prod}/backups/", None),
        (f"/environments/{prod}/backups/targets/new/", None),
        (f"/environments/{prod}/backups/targets/orders-db/edit/", None),
        (f"/backups/{p['backup'].pk}/restore/", None),
        (f"/drills/{p['drill'].pk}/", None),
        ("/environments/team-dev/provisioning/", None),
        ("/environment-templates/", None),
        ("/environment-templates/new/", None),
        *([(f"/environment-templates/{template.name}/", None)] if template else []),
        *([(f"/environment-templates/{template.name}/delete/", None)] if template else []),
        ("/clusters/", None),
        ("/clusters/new/", None),
        ("/clusters/remote/delete/", None),
        ("/services/", None),
        ("/services/new/", None),
        ("/services/web/", None),
        ("/services/web/edit/", None),
        ("/services/web/delete/", None),
        ("/releases/", None),
        ("/releases/new/", None),
        ("/deployments/", None),
        ("/deployments/new/", None),
        (f"/deployments/{p['pending'].pk}/", None),
        (f"/deployments/{p['succeeded'].pk}/", None),
        (f"/deployments/{p['succeeded'].pk}/evidence/", None),
        ("/approvals/", None),
        ("/jobs/", None),
        (f"/jobs/{p['job'].pk}/", None),
        ("/audit/", None),
        ("/compliance/", None),
        ("/compliance/access/", None),
        ("/compliance/period/", None),
        ("/users/", None),
        ("/tokens/", None),
        ("/environments/nope/", None),  # the 404 page
        ("/boom/", None),  # the 500 page
    ]


# What the URLconf routes that is not a page of its own (tests/pages/test_layout.py checks that every
# other route is in `pages()`): fragments a page loads or polls, downloads, and POST-only actions.
NOT_PAGES = {
    "fragment": ["board_updates", "deployment_verification", "environment_request_check", "environment_quota",
                 "approval_count", "deployment_preview", "environment_live", "environment_pending"],
    "download or image": ["approval_badge", "evidence_zip", "period_evidence_zip", "audit_export"],
    "POST only": ["logout", "environment_reprovision", "environment_approve", "environment_reject",
                  "environment_extend", "cluster_check", "restore_approve", "restore_reject", "deployment_approve",
                  "deployment_reject", "deployment_cancel", "deployment_rollback", "backup_start", "backup_verify",
                  "job_retry", "job_cancel", "role_grant", "role_revoke", "time_zone_set", "token_create",
                  "token_revoke"],
    "the same view as another page": ["sod_report"],  # /compliance/separation-of-duties/ is /compliance/
    "opened before signing in": ["login"],
}


def check(page, url, wait_for=None, width=None):
    """Problems of one page: axe's violations (any impact), and sideways scroll on a phone."""
    response = page.goto(url)
    problems = []
    if wait_for:
        page.wait_for_selector(wait_for, timeout=5000)
    found = violations(page, EVERY_IMPACT)
    if found:
        problems.append(describe(found, f"{url} at {width} px"))
    if width == PHONE["width"]:
        scroll = page.evaluate("document.scrollingElement.scrollWidth")
        if scroll > PHONE["width"]:
            problems.append(f"{url} at 390 px is {scroll} px wide (scrolls sideways)")
    return response.status, problems


@pytest.mark.urls("tests.pages.boom_urls")
@pytest.mark.django_db(transaction=True)
def test_every_page_passes_axe_at_desktop_and_phone_width(browser, live_server, product):
    problems, statuses = [], {}
    for viewport in (DESKTOP, PHONE):
        context = browser.new_context(viewport=viewport, timezone_id="Asia/Seoul", locale="en-US")
        page = context.new_page()
        page.set_content('<main><img src="x.png"><input type="text"></main>')  # axe really runs here
        assert {"image-alt", "label"} <= {v["id"] for v in violations(page)}
        page.goto(f"{live_server.url}/login/")
        found = violations(page, EVERY_IMPACT)
        if found:
            problems.append(describe(found, f"/login/ at {viewport['width']} px"))
        login(page, live_server, "ada")
        for path, wait_for in pages(product):
            status, found = check(page, f"{live_server.url}{path}", wait_for, viewport["width"])
            statuses[path] = status
            problems.extend(found)
        context.close()
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        login(page, live_server, "vic")
        status, found = check(page, f"{live_server.url}/users/", width=viewport["width"])  # the 403 page
        statuses["/users/ (viewer)"] = status
        problems.extend(found)
        context.close()
    assert statuses["/environments/nope/"] == 404 and statuses["/boom/"] == 500
    assert statuses["/users/ (viewer)"] == 403
    assert all(status == 200 for path, status in statuses.items() if path not in (
        "/environments/nope/", "/boom/", "/users/ (viewer)")), statuses
    assert not problems, "\n".join(problems)
