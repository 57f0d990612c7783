"""Pages stay true while open (portal/live.py): changes show at the next poll, nothing else moves."""
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from deployments.models import Deployment
from deployments.releases import register_release
from deployments.rendering import manifest_hash, render_text
from environments.models import Environment

from .conftest import login

DIGEST = "sha256:" + "e" * 64
# How long to wait for a live fragment (polled every 1 s) to show a change: a bound on the wait, not a speed
# requirement (no timing asserts in tests): a change shows at the next poll; bench/bench_polling.py measures a poll.
WAIT_MS = 15000


def deployment(user, env, version, state, service="web"):
    release = register_release(user, {"service": service, "version": version,
                                                 "image": f"registry.example.com/shop/{service}:{version}@{DIGEST}"})
    return Deployment.objects.create(
        release=release, environment=env, service=release.service, requested_by=user, state=state,
        image=release.image, manifest_hash=manifest_hash(release.service, release, env),
        rendered_manifest=render_text(release.service, release, env),
        started_at=timezone.now(), finished_at=timezone.now() if state == "succeeded" else None)


@pytest.mark.django_db(transaction=True)
def test_an_unchanged_fragment_is_left_alone_and_a_change_shows_without_a_reload(page, live_server, viewer, deployer,
                                                                        make_env, make_service):
    prod = make_env("prod", tier="production")
    make_service("web")
    deployment(deployer, prod, "1.0.0", "succeeded")
    polls = []
    page.on("response", lambda r: polls.append(r.status) if "/environments/prod/live/" in r.url else None)
    login(page, live_server, "vic")
    page.goto(f"{live_server.url}/environments/prod/")
    expect(page.locator("#env-live")).to_contain_text("1.0.0")
    page.evaluate("document.getElementById('env-live').dataset.marker = 'first'; window.pageMarker = 1")

    page.wait_for_timeout(2500)  # a few polls of an unchanged fragment
    assert 304 in polls
    assert page.evaluate("document.getElementById('env-live').dataset.marker") == "first"  # not swapped

    deployment(deployer, prod, "1.1.0", "succeeded")
    expect(page.locator("#env-live")).to_contain_text("1.1.0", timeout=WAIT_MS)
    assert page.evaluate("window.pageMarker") == 1  # swapped in place, the page was not reloaded


@pytest.mark.django_db(transaction=True)
def test_a_deployment_flip_shows_on_its_page_without_a_reload(page, live_server, viewer, deployer, make_env, make_service):
    stage = make_env("stage", tier="staging")
    make_service("web")
    deployment(deployer, stage, "1.0.0", "succeeded")
    running = deployment(deployer, stage, "1.1.0", "running")
    login(page, live_server, "vic")
    page.goto(f"{live_server.url}/deployments/{running.pk}/")
    expect(page.locator("#deployment-state")).to_have_text("running")
    expect(page.locator("#running-now")).to_contain_text("1.0.0")
    page.evaluate("window.pageMarker = 1")

    now = timezone.now()
    Deployment.objects.filter(pk=running.pk).update(state="succeeded", finished_at=now, updated_at=now, color="green")
    expect(page.locator("#deployment-state")).to_have_text("succeeded", timeout=WAIT_MS)
    expect(page.locator("#running-now")).to_contain_text("This deployment is what runs now", timeout=WAIT_MS)
    expect(page.locator("#release-card")).to_contain_text("green", timeout=WAIT_MS)
    assert page.evaluate("window.pageMarker") == 1


@pytest.mark.django_db(transaction=True)
def test_a_new_environment_becoming_ready_shows_without_a_reload(page, live_server, viewer, make_env):
    env = make_env("dev-new", status="provisioning")
    login(page, live_server, "vic")
    page.goto(f"{live_server.url}/environments/dev-new/")
    expect(page.locator("#env-status")).to_have_text("provisioning")
    Environment.objects.filter(pk=env.pk).update(status="ready", updated_at=timezone.now())
    expect(page.locator("#env-status")).to_have_text("ready", timeout=WAIT_MS)


@pytest.mark.django_db(transaction=True)
def test_the_inbox_the_deployments_list_and_a_job_log_follow_without_a_reload(page, live_server, approver, deployer,
                                                                       make_env, make_service):
    from deployments.actions import request_deployment
    from portal.jobs.models import Job, JobLogLine

    prod = make_env("prod", tier="production", required_approvals=2, prevent_self_approval=True)
    request = make_env("big-staging", tier="staging", status="requested", required_approvals=1)
    make_service("web")
    login(page, live_server, "abe")

    # The approvals inbox: a new request shows, and a comment being typed stays as it was.
    page.goto(f"{live_server.url}/approvals/")
    comment = page.locator(f"#approve-comment-{request.pk}")
    comment.fill("quota checked with finance")
    done = deployment(deployer, prod, "1.0.0", "succeeded")  # something to deploy over
    release = register_release(deployer, {"service": "web", "version": "1.1.0",
                                          "image": f"registry.example.com/shop/web:1.1.0@{DIGEST}"})
    asked = request_deployment(deployer, {"release": release.pk, "environment": "prod"})
    expect(page.locator("#approvals-inbox")).to_contain_text(f"#{asked.pk}", timeout=WAIT_MS)
    expect(comment).to_have_value("quota checked with finance")

    # The deployments list: a state that changes shows in its row.
    page.goto(f"{live_server.url}/deployments/?environment=prod")
    row = page.locator("#deployment-table tr", has=page.get_by_role("link", name=f"#{done.pk}", exact=True))
    expect(row).to_contain_text("succeeded")
    Deployment.objects.filter(pk=done.pk).update(state="failed", updated_at=timezone.now())
    expect(row).to_contain_text("failed", timeout=WAIT_MS)
    expect(page.get_by_label("Environment")).to_have_value("prod")  # the filter stays

    # A running job's log: a new line, then the end.
    job = Job.objects.create(kind="environment.provision", state="running", environment=prod,
                             started_at=timezone.now())
    JobLogLine.objects.create(job=job, message="applying Namespace prod")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Provision environment")
    JobLogLine.objects.create(job=job, message="applying ResourceQuota")
    expect(page.locator("#job-log")).to_contain_text("applying ResourceQuota", timeout=WAIT_MS)
    Job.objects.filter(pk=job.pk).update(state="succeeded", finished_at=timezone.now())
    expect(page.locator("#job-log .log-end")).to_contain_text("succeeded", timeout=WAIT_MS)
    expect(page.locator("#job-summary")).to_contain_text("succeeded")
