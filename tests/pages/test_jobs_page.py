import re
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.jobs.models import Job, JobLogLine
from tests.pages.conftest import events, text

LOG_POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "job-log-tail"}  # htmx polling the log's tail


@pytest.fixture
def make_job(db):
    def factory(kind="environment.provision", state="queued", environment=None, requested_by=None, **extra):
        return Job.objects.create(kind=kind, state=state, environment=environment, requested_by=requested_by,
                                  target_type="environments.environment" if environment else "",
                                  target_repr=environment.slug if environment else "", **extra)

    return factory


def log(job, *messages, level="info"):
    return [JobLogLine.objects.create(job=job, message=m, level=level) for m in messages]


# ---------------------------------------------------------------- list

def test_it_lists_jobs_with_state_requester_and_duration(login, viewer, make_job, make_env, deployer):
    now = timezone.now()
    make_job(state="succeeded", environment=make_env("dev-a"), requested_by=deployer,
             started_at=now - timedelta(seconds=65), finished_at=now)
    body = text(login(viewer).get("/jobs/"))
    assert "environment.provision" in body and "state-succeeded" in body and "dee" in body and "1m 05s" in body


def test_it_lists_only_jobs_of_visible_environments(login, make_user, make_job, make_env):
    mine, theirs = make_env("mine"), make_env("theirs")
    make_job(environment=mine)
    make_job(environment=theirs)
    body = text(login(make_user("sam", ("viewer", mine))).get("/jobs/"))
    assert 'href="/environments/mine/"' in body and 'href="/environments/theirs/"' not in body


def test_it_filters_jobs_by_state(login, viewer, make_job):
    failed = make_job(state="failed")
    queued = make_job(state="queued")
    body = text(login(viewer).get("/jobs/?state=failed"))
    assert f"/jobs/{failed.pk}/" in body and f"/jobs/{queued.pk}/" not in body


def test_it_shows_the_no_role_page_instead_of_jobs(login, nobody, make_job):
    job = make_job()
    body = text(login(nobody).get("/jobs/"))
    assert "You have no role yet" in body and str(job.pk) not in body


@pytest.mark.parametrize("count", [5, 50])
def test_it_costs_the_same_queries_for_5_and_50_jobs(login, viewer, make_job, make_env, deployer, count,
                                                    django_assert_max_num_queries):
    for i in range(count):
        make_job(environment=make_env(f"env-{i}"), requested_by=deployer)
    client = login(viewer)
    with django_assert_max_num_queries(8):  # 7 + the live fragment's version (portal/live.py)
        response = client.get("/jobs/")
    assert len(re.findall(r'href="/jobs/[0-9a-f-]{36}/"', text(response))) == count


# ---------------------------------------------------------------- job page and its log

def test_it_shows_the_job_with_its_error_and_log(login, viewer, make_job):
    job = make_job(state="failed", error="namespace quota exceeded")
    log(job, "applying namespace dev-a", "boom")
    body = text(login(viewer).get(f"/jobs/{job.pk}/"))
    assert "namespace quota exceeded" in body and "applying namespace dev-a" in body and "boom" in body


def test_it_polls_the_log_while_the_job_runs(login, viewer, make_job):
    job = make_job(state="running", started_at=timezone.now())
    last = log(job, "one", "two")[-1]
    body = text(login(viewer).get(f"/jobs/{job.pk}/"))
    assert f'hx-get="/jobs/{job.pk}/?after={last.pk}" hx-trigger="every 1s" hx-swap="outerHTML"' in body


def test_it_does_not_poll_a_finished_job(login, viewer, make_job):
    job = make_job(state="succeeded")
    log(job, "done")
    body = text(login(viewer).get(f"/jobs/{job.pk}/"))
    assert f"/jobs/{job.pk}/?after=" not in body and "log-end" in body  # (the nav's badge still polls)


def test_the_fragment_holds_only_new_lines(login, viewer, make_job):
    job = make_job(state="running", started_at=timezone.now())
    first = log(job, "old line")[0]
    newer = log(job, "new line")[0]
    response = login(viewer).get(f"/jobs/{job.pk}/?after={first.pk}", **LOG_POLL)
    body = text(response)
    assert "new line" in body and "old line" not in body
    assert "<html" not in body
    assert f"?after={newer.pk}" in body and 'hx-trigger="every 1s"' in body
    assert "HX-Request" in response["Vary"]


def test_the_fragment_keeps_polling_from_the_same_line_when_nothing_is_new(login, viewer, make_job):
    job = make_job(state="running", started_at=timezone.now())
    line = log(job, "only line")[0]
    body = text(login(viewer).get(f"/jobs/{job.pk}/?after={line.pk}", **LOG_POLL))
    assert "only line" not in body and f"?after={line.pk}" in body


def test_the_fragment_stops_polling_when_the_job_finishes(login, viewer, make_job):
    job = make_job(state="running", started_at=timezone.now())
    line = log(job, "working")[0]
    client = login(viewer)
    Job.objects.filter(pk=job.pk).update(state="failed", finished_at=timezone.now(), error="it broke")
    log(job, "it broke", level="error")
    body = text(client.get(f"/jobs/{job.pk}/?after={line.pk}", **LOG_POLL))
    assert "it broke" in body and "working" not in body
    assert "hx-trigger" not in body
    assert 'id="job-summary" class="card" hx-swap-oob="true"' in body and "state-failed" in body


def test_a_full_request_with_after_gets_the_whole_page(login, viewer, make_job):
    job = make_job(state="running", started_at=timezone.now())
    first = log(job, "old line")[0]
    body = text(login(viewer).get(f"/jobs/{job.pk}/?after={first.pk}"))
    assert "<html" in body and "old line" in body


def test_it_answers_404_for_a_job_of_an_invisible_environment(login, make_user, make_job, make_env):
    mine = make_env("mine")
    job = make_job(environment=make_env("theirs"))
    assert login(make_user("sam", ("viewer", mine))).get(f"/jobs/{job.pk}/").status_code == 404


# ---------------------------------------------------------------- retry and cancel

def test_it_offers_retry_on_a_failed_job_to_its_requester(login, deployer, make_job):
    job = make_job(state="failed", requested_by=deployer)
    assert f'action="/jobs/{job.pk}/retry/"' in text(login(deployer).get(f"/jobs/{job.pk}/"))


def test_it_offers_cancel_on_a_queued_job_to_admins(login, admin, make_job):
    job = make_job(state="queued")
    assert f'action="/jobs/{job.pk}/cancel/"' in text(login(admin).get(f"/jobs/{job.pk}/"))


def test_it_hides_retry_and_cancel_from_others(login, viewer, make_job, deployer):
    failed, queued = make_job(state="failed", requested_by=deployer), make_job(state="queued", requested_by=deployer)
    client = login(viewer)
    assert "/retry/" not in text(client.get(f"/jobs/{failed.pk}/"))
    assert "/cancel/" not in text(client.get(f"/jobs/{queued.pk}/"))


def test_it_retries_a_failed_job(login, deployer, make_job):
    job = make_job(state="failed", requested_by=deployer, error="x")
    response = login(deployer).post(f"/jobs/{job.pk}/retry/")
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    job.refresh_from_db()
    assert job.state == "queued" and job.error == ""
    assert events("job.retried", "success", actor="dee").exists()


def test_it_cancels_a_queued_job(login, admin, make_job):
    job = make_job(kind="cluster.check", state="queued")
    login(admin).post(f"/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert events("job.cancelled", "success", actor="ada").exists()


@pytest.mark.parametrize("kind", ["environment.provision", "deployment.apply"])
def test_it_does_not_cancel_a_job_that_a_state_machine_owns(login, admin, make_job, kind):
    job = make_job(kind=kind, state="queued")
    response = login(admin).post(f"/jobs/{job.pk}/cancel/", follow=True)
    job.refresh_from_db()
    assert job.state == "queued"
    assert "cannot be cancelled on its own" in text(response)


def test_it_explains_why_a_succeeded_job_cannot_be_retried(login, admin, make_job):
    job = make_job(state="succeeded")
    response = login(admin).post(f"/jobs/{job.pk}/retry/", follow=True)
    assert "Cannot retry" in text(response)
    job.refresh_from_db()
    assert job.state == "succeeded"


def test_it_refuses_a_direct_retry_post_from_someone_else(login, viewer, make_job, deployer):
    job = make_job(state="failed", requested_by=deployer)
    assert login(viewer).post(f"/jobs/{job.pk}/retry/").status_code == 403
    job.refresh_from_db()
    assert job.state == "failed"
    assert events("job.retry", "denied", actor="vic").exists()


def test_it_refuses_a_direct_cancel_post_from_someone_else(login, viewer, make_job, deployer):
    job = make_job(state="queued", requested_by=deployer)
    assert login(viewer).post(f"/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.state == "queued"
    assert events("job.cancel", "denied", actor="vic").exists()


def test_it_rejects_get_on_retry(login, admin, make_job):
    job = make_job(state="failed")
    assert login(admin).get(f"/jobs/{job.pk}/retry/").status_code == 405


# ---------------------------------------------------------------- system jobs and the live list

def test_it_hides_system_jobs_unless_asked(login, viewer, make_job):
    note = make_job(kind="notification.send")
    provision = make_job(kind="environment.provision")
    client = login(viewer)
    body = text(client.get("/jobs/"))
    assert f"/jobs/{provision.pk}/" in body and f"/jobs/{note.pk}/" not in body
    assert 'name="system" value="1"' in body and "Show system jobs" in body
    body = text(client.get("/jobs/?system=1"))
    assert f"/jobs/{provision.pk}/" in body and f"/jobs/{note.pk}/" in body


def test_it_names_jobs_by_their_title_and_kind(login, viewer, make_job):
    make_job(kind="environment.provision")
    body = text(login(viewer).get("/jobs/"))
    assert "Provision environment</a> <code" in body and "environment.provision" in body


def test_the_job_list_is_live_and_keeps_its_filters(login, viewer, make_job):
    job = make_job(state="queued")
    client = login(viewer)
    page = text(client.get("/jobs/?state=queued"))
    tag = re.search(r'id="job-table"[^>]*data-live-version="([0-9a-f]+)"', page).group(1)
    assert 'hx-get="/jobs/?state=queued" hx-trigger="every 1s"' in page
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "job-table", "HTTP_IF_NONE_MATCH": f'"{tag}"'}
    assert client.get("/jobs/?state=queued", **poll).status_code == 304
    Job.objects.filter(pk=job.pk).update(state="running", started_at=timezone.now())
    response = client.get("/jobs/?state=queued", **poll)
    assert response.status_code == 200 and text(response).startswith('<div id="job-table"')
    assert f"/jobs/{job.pk}/" not in text(response)  # it no longer matches the page's filter
