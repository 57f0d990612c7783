"""The deployments list and the job log on the one live mechanism (portal/live.py).

A poll of an unchanged fragment is answered 304 from an aggregate query, without rendering anything
and with the same number of queries however many rows there are; a change flips the version."""
import re

import pytest
from django.utils import timezone

from deployments.actions import approve_deployment
from deployments.models import Deployment
from portal.jobs.models import Job, JobLogLine
from tests.pages.conftest import poll, text, version_of
from tests.pages.deployments.helpers import ask, deployed


def assert_not_modified(response):
    assert response.status_code == 304 and response.content == b""
    assert response.templates == []  # answered from the version alone: nothing was rendered


# ---------------------------------------------------------------- the deployments list

@pytest.mark.parametrize("count", [2, 25])
def test_an_unchanged_deployments_list_is_answered_304_without_rendering_in_constant_queries(
        login, viewer, deployer, make_env, web, count, django_assert_max_num_queries):
    for i in range(count):
        deployed(deployer, make_env(f"env-{i}"), f"1.{i}.0")
    client = login(viewer)
    page = text(client.get("/deployments/"))
    tag = version_of(page, "deployment-table")
    assert 'hx-get="/deployments/" hx-trigger="every 1s"' in page
    with django_assert_max_num_queries(4):  # session, user with its profile (time zone), roles, the version's aggregate
        response = poll(client, "/deployments/", "deployment-table", tag)
    assert_not_modified(response)
    assert response["ETag"] == f'"{tag}"'


def test_a_deployment_that_changes_state_flips_the_lists_version(login, viewer, deployer, make_env, web):
    env = make_env("stage", tier="staging")
    running = deployed(deployer, env, "1.1.0", state="running")
    client = login(viewer)
    tag = version_of(text(client.get("/deployments/")), "deployment-table")
    Deployment.objects.filter(pk=running.pk).update(state="succeeded", updated_at=timezone.now())
    response = poll(client, "/deployments/", "deployment-table", tag)
    body = text(response)
    assert response.status_code == 200 and body.startswith('<div id="deployment-table"')
    assert version_of(body, "deployment-table") != tag and response["ETag"] != f'"{tag}"'
    assert "state-succeeded" in body and "state-running" not in body
    assert "<html" not in body  # the fragment only: the filters form and its typed values stay


def test_a_new_deployment_shows_in_the_list_and_the_filters_are_kept(login, viewer, deployer, make_env, web):
    dev, prod = make_env("dev"), make_env("prod", tier="production", required_approvals=1)
    ask(deployer, prod, "1.0.0")
    client = login(viewer)
    url = "/deployments/?environment=prod&state=pending_approval"
    page = text(client.get(url))
    assert 'hx-get="/deployments/?environment=prod&amp;state=pending_approval"' in page
    tag = version_of(page, "deployment-table")
    in_dev = ask(deployer, dev, "1.0.0")  # another environment: not in this filtered list
    assert_not_modified(poll(client, url, "deployment-table", tag))
    newer = ask(deployer, prod, "1.1.0")
    body = text(poll(client, url, "deployment-table", tag))
    assert f'href="/deployments/{newer.pk}/"' in body and f'href="/deployments/{in_dev.pk}/"' not in body


def test_an_unknown_filter_value_matches_nothing(login, viewer, deployer, make_env, web):
    ask(deployer, make_env("dev"), "1.0.0")
    body = text(login(viewer).get("/deployments/?environment=nope"))
    assert "No deployments match." in body and 'href="/deployments/?' not in body


# ---------------------------------------------------------------- the job log

@pytest.fixture
def running_job(db):
    return Job.objects.create(kind="environment.provision", state="running", started_at=timezone.now())


def log(job, *messages):
    return [JobLogLine.objects.create(job=job, message=m) for m in messages]


@pytest.mark.parametrize("lines", [1, 40])
def test_an_unchanged_job_log_is_answered_304_without_rendering_in_constant_queries(
        login, viewer, running_job, lines, django_assert_max_num_queries):
    last = log(running_job, *[f"step {i}" for i in range(lines)])[-1]
    client = login(viewer)
    page = text(client.get(f"/jobs/{running_job.pk}/"))
    tag = version_of(page, "job-log-tail")
    url = f"/jobs/{running_job.pk}/?after={last.pk}"
    assert f'hx-get="{url}" hx-trigger="every 1s"' in page
    with django_assert_max_num_queries(5):  # session, user with its profile, roles, the job, the log's aggregate
        response = poll(client, url, "job-log-tail", tag)
    assert_not_modified(response)


def test_a_new_log_line_flips_the_version_and_comes_alone(login, viewer, running_job):
    first = log(running_job, "old line")[0]
    client = login(viewer)
    tag = version_of(text(client.get(f"/jobs/{running_job.pk}/")), "job-log-tail")
    newer = log(running_job, "new line")[0]
    response = poll(client, f"/jobs/{running_job.pk}/?after={first.pk}", "job-log-tail", tag)
    body = text(response)
    assert response.status_code == 200 and response["ETag"] != f'"{tag}"'
    assert "new line" in body and "old line" not in body
    assert f'hx-get="/jobs/{running_job.pk}/?after={newer.pk}"' in body and version_of(body, "job-log-tail") != tag


def test_the_job_finishing_without_a_new_line_flips_the_version_and_stops_the_poll(login, viewer, running_job):
    line = log(running_job, "working")[0]
    client = login(viewer)
    url = f"/jobs/{running_job.pk}/?after={line.pk}"
    tag = version_of(text(client.get(f"/jobs/{running_job.pk}/")), "job-log-tail")
    assert_not_modified(poll(client, url, "job-log-tail", tag))
    Job.objects.filter(pk=running_job.pk).update(state="succeeded", finished_at=timezone.now())
    body = text(poll(client, url, "job-log-tail", tag))
    assert '<li id="job-log-tail" class="log-end">' in body and "hx-trigger" not in body
    assert 'id="job-summary" class="card" hx-swap-oob="true"' in body and "state-succeeded" in body


def test_the_deployment_page_embeds_the_same_live_log(login, viewer, deployer, make_env, web):
    deployment = ask(deployer, make_env("dev"))  # no approvals needed: queued with its job
    job = Deployment.objects.get(pk=deployment.pk).job
    Job.objects.filter(pk=job.pk).update(state="running", started_at=timezone.now())
    line = log(job, "applying Deployment web")[0]
    client = login(viewer)
    tag = version_of(text(client.get(f"/deployments/{deployment.pk}/")), "job-log-tail")
    assert_not_modified(poll(client, f"/jobs/{job.pk}/?after={line.pk}", "job-log-tail", tag))


# ---------------------------------------------------------------- jobs named by their kind's title

def test_every_registered_job_kind_has_a_title_of_words():
    from portal.jobs.kinds import _KINDS, get_kind

    get_kind("environment.provision")  # loads every app's jobs.py
    assert _KINDS and all(spec.title != spec.name and " " in spec.title for spec in _KINDS.values())


def test_jobs_are_named_by_their_title_on_every_page_that_lists_or_shows_them(login, admin, make_env, deployer, web):
    env = make_env("dev")
    job = Job.objects.create(kind="environment.provision", environment=env, state="succeeded")
    deployment = ask(deployer, env)
    client = login(admin)
    assert f'<a href="/jobs/{job.pk}/">Provision environment</a>' in text(client.get("/environments/dev/"))
    assert "<h1>Provision environment" in text(client.get(f"/jobs/{job.pk}/"))
    assert "Provision environment</a> <code" in text(client.get("/jobs/"))
    page = text(client.get(f"/deployments/{deployment.pk}/"))
    assert '">Apply deployment</a></h2>' in page and ">deployment.apply<" not in page


def test_an_unregistered_kind_is_shown_as_it_is(db):
    assert Job(kind="old.kind").title == "old.kind"


# ---------------------------------------------------------------- the approvals inbox

@pytest.mark.parametrize("count", [2, 20])
def test_an_unchanged_inbox_is_answered_304_without_rendering_in_constant_queries(
        login, approver, deployer, omar, prod, web, count, django_assert_max_num_queries):
    for i in range(count):
        approve_deployment(omar, ask(deployer, prod, f"1.{i}.0").pk)
    client = login(approver)
    page = text(client.get("/approvals/"))
    tag = version_of(page, "approvals-inbox")
    assert 'hx-get="/approvals/" hx-trigger="every 1s"' in page
    # session, user, profile, roles, environments with approver groups, and the three aggregates
    with django_assert_max_num_queries(8):
        response = poll(client, "/approvals/", "approvals-inbox", tag)
    assert_not_modified(response)


def test_a_new_request_and_another_approvers_decision_flip_the_inbox(login, approver, deployer, omar, prod, web):
    client = login(approver)
    tag = version_of(text(client.get("/approvals/")), "approvals-inbox")
    waiting = ask(deployer, prod, "1.0.0")
    response = poll(client, "/approvals/", "approvals-inbox", tag)
    body = text(response)
    assert response.status_code == 200 and body.startswith('<div id="approvals-inbox"')
    assert f'href="/deployments/{waiting.pk}/"' in body and "2 <span class=\"muted\">of 2</span>" in body
    tag = version_of(body, "approvals-inbox")
    assert_not_modified(poll(client, "/approvals/", "approvals-inbox", tag))
    approve_deployment(omar, waiting.pk)  # someone else's approval: one still needed
    body = text(poll(client, "/approvals/", "approvals-inbox", tag))
    assert "1 <span class=\"muted\">of 2</span>" in body


def test_an_environment_request_flips_the_inbox_and_its_comment_inputs_survive_a_swap(
        login, approver, make_env):
    client = login(approver)
    tag = version_of(text(client.get("/approvals/")), "approvals-inbox")
    make_env("big-staging", tier="staging", status="requested", required_approvals=1)
    body = text(poll(client, "/approvals/", "approvals-inbox", tag))
    assert 'href="/environments/big-staging/"' in body
    assert re.search(r'<input type="text" id="approve-comment-\d+" name="comment"[^>]* hx-preserve="true"', body)


# ---------------------------------------------------------------- evidence for a period: its builds

def test_the_period_evidence_builds_follow_their_job_without_a_reload(login, admin):
    from deployments.compliance.period import KIND

    job = Job.objects.create(kind=KIND, state="running", started_at=timezone.now(),
                             params={"since": "2026-07-01", "until": "2026-09-30"})
    client = login(admin)
    page = text(client.get("/compliance/period/"))
    tag = version_of(page, "period-builds")
    assert_not_modified(poll(client, "/compliance/period/", "period-builds", tag))
    JobLogLine.objects.create(job=job, message="progress: 3/7")
    body = text(poll(client, "/compliance/period/", "period-builds", tag))
    assert body.startswith('<section id="period-builds"') and "3 of 7 pack(s)" in body


def test_a_restore_waiting_and_another_approvers_decision_on_it_flip_the_inbox(login, approver, deployer, omar,
                                                                                prod):
    from environments.backups.models import Backup, BackupTarget, Restore

    client = login(approver)
    tag = version_of(text(client.get("/approvals/")), "approvals-inbox")
    target = BackupTarget(environment=prod, name="orders-db", dsn_display="app@db:5432/orders",
                          destination={"kind": "local", "path": "/tmp/gantry-test"})
    target.dsn = "postgres://app:secret@db:5432/orders"
    target.save()
    backup = Backup.objects.create(target=target, state="succeeded", size_bytes=1024, sha256="b" * 64,
                                   finished_at=timezone.now())
    restore = Restore.objects.create(backup=backup, state="pending_approval", database="orders_copy",
                                     destination_display="app@db:5432/orders_copy", requested_by=deployer)
    body = text(poll(client, "/approvals/", "approvals-inbox", tag))
    assert 'class="restore-approval"' in body and "(0 given)" in body
    tag = version_of(body, "approvals-inbox")
    assert_not_modified(poll(client, "/approvals/", "approvals-inbox", tag))
    Restore.objects.filter(pk=restore.pk).update(approvals=[{"user": "omar", "user_id": omar.pk,
                                                             "decision": "approve", "comment": "", "at": "now"}])
    assert "(1 given)" in text(poll(client, "/approvals/", "approvals-inbox", tag))


# ---------------------------------------------------------------- clusters: a check a worker finishes

def test_a_finished_cluster_check_shows_on_the_cluster_list_without_a_reload(login, admin, remote_cluster):
    from environments.models import Cluster

    client = login(admin)
    page = text(client.get("/clusters/"))
    assert "never checked" in page
    tag = version_of(page, "cluster-table")
    assert_not_modified(poll(client, "/clusters/", "cluster-table", tag))
    Cluster.objects.filter(pk=remote_cluster.pk).update(last_checked_at=timezone.now(), last_check_ok=True,
                                                        server_version="v1.31.0")
    body = text(poll(client, "/clusters/", "cluster-table", tag))
    assert body.startswith('<div id="cluster-table"') and "reachable" in body and "v1.31.0" in body


# ---------------------------------------------------------------- an environment's history

def test_the_history_follows_outcomes_and_approvals_and_keeps_its_filter(login, viewer, deployer, omar, prod, web,
                                                                         django_assert_max_num_queries):
    from deployments.actions import approve_deployment as approve

    waiting = ask(deployer, prod, "1.0.0")
    client = login(viewer)
    url = "/environments/prod/history/?service=web"
    page = text(client.get(url))
    assert 'hx-get="/environments/prod/history/?service=web" hx-trigger="every 1s"' in page
    tag = version_of(page, "history-table")
    with django_assert_max_num_queries(5):  # session, user with its profile, roles, the environment, the aggregate
        assert_not_modified(poll(client, url, "history-table", tag))
    approve(omar, waiting.pk)
    body = text(poll(client, url, "history-table", tag))
    assert body.startswith('<div id="history-table"') and "omar" in body


# ---------------------------------------------------------------- releases CI registers

def test_a_release_registered_while_the_list_is_open_shows_in_it(login, viewer, deployer, web, make_service,
                                                                 django_assert_max_num_queries):
    from tests.pages.deployments.helpers import release_of

    make_service("api")
    release_of(deployer, "1.0.0")
    client = login(viewer)
    url = "/releases/?service=web"
    tag = version_of(text(client.get(url)), "release-table")
    release_of(deployer, "1.0.0", service="api")  # another service: not in this list
    with django_assert_max_num_queries(4):  # session, user with its profile, roles, the aggregate
        assert_not_modified(poll(client, url, "release-table", tag))
    release_of(deployer, "1.1.0")
    body = text(poll(client, url, "release-table", tag))
    assert body.startswith('<div id="release-table"') and "1.1.0" in body
