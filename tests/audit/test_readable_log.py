"""The audit log as people read it: seconds and zone, targets in words with links, keyset pages."""
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Release
from portal.audit.models import AuditEvent
from portal.audit.services import record

pytestmark = pytest.mark.django_db


def add(action, **kwargs):
    with transaction.atomic():
        return record(action, **kwargs)


@pytest.fixture
def deployment(make_env, make_service, deployer):
    env = make_env("production", tier="production")
    web = make_service("web")
    release = Release.objects.create(service=web, version="1.1.0", image="r.example.com/web:1.1.0")
    return Deployment.objects.create(release=release, environment=env, service=web, requested_by=deployer,
                                     image=release.image, manifest_hash="a" * 64)


def test_targets_read_as_words_and_link_to_their_object(client, viewer, deployment):
    add("deployment.request", actor=deployment.requested_by, target=deployment, environment=deployment.environment)
    client.force_login(viewer)
    body = client.get("/audit/").content.decode()
    assert f'<a href="/deployments/{deployment.pk}/">deployment #{deployment.pk}: web 1.1.0 → production</a>' in body
    assert "deployments.deployment:" not in body


def test_times_are_shown_to_the_second_with_the_zone(client, viewer):
    event = add("act.one", actor_name="ada")
    client.force_login(viewer)
    body = client.get("/audit/").content.decode()
    assert event.at.strftime("%Y-%m-%d %H:%M:%S UTC") in body


def test_a_filter_hides_the_job_runners_own_events(client, viewer, deployment):
    from portal.jobs.services import enqueue_job

    with transaction.atomic():
        job = enqueue_job("deployment.apply", target=deployment, environment=deployment.environment,
                          params={"deployment": deployment.pk})
    add("job.started", actor_name="gantry-worker", target=job)
    add("deployment.approve", actor=deployment.requested_by, target=deployment)
    client.force_login(viewer)
    everything = client.get("/audit/").content.decode()
    assert "<code>job.started</code>" in everything and f'href="/jobs/{job.pk}/"' in everything
    quiet = client.get("/audit/?hide_system=1").content.decode()
    assert "<code>job.started</code>" not in quiet and "<code>deployment.approve</code>" in quiet
    api = [e["action"] for e in client.get("/api/v1/audit", {"hide_system": "1"}).json()["results"]]
    assert "deployment.approve" in api and not [a for a in api if a.startswith("job.")]
    assert "job.started" in [e["action"] for e in client.get("/api/v1/audit").json()["results"]]


def test_keyset_pages_follow_older_and_newer_links(client, viewer, django_assert_max_num_queries):
    client.force_login(viewer)
    for i in range(120):
        add(f"act.n{i}", actor_name="ci-bot")
    first = client.get("/audit/?actor=ci-bot").content.decode()
    assert "<code>act.n119</code>" in first and "<code>act.n70</code>" in first and "<code>act.n69</code>" not in first
    older = AuditEvent.objects.get(action="act.n70").seq
    assert f'href="?actor=ci-bot&amp;before={older}"' in first
    with django_assert_max_num_queries(8):
        second = client.get(f"/audit/?actor=ci-bot&before={older}").content.decode()
    assert "<code>act.n69</code>" in second and "<code>act.n20</code>" in second and "<code>act.n70</code>" not in second
    newer = AuditEvent.objects.get(action="act.n69").seq
    assert f'href="?actor=ci-bot&amp;after={newer}"' in second
    back = client.get(f"/audit/?actor=ci-bot&after={newer}").content.decode()
    assert "<code>act.n119</code>" in back and "<code>act.n70</code>" in back and "<code>act.n69</code>" not in back
    assert client.get("/audit/?before=abc").status_code == 400


def test_one_event_by_its_number(client, viewer):
    event = add("act.one", actor_name="ada")
    add("act.two", actor_name="ada")
    client.force_login(viewer)
    body = client.get(f"/audit/?seq={event.seq}").content.decode()
    assert "<code>act.one</code>" in body and "<code>act.two</code>" not in body


def test_the_queries_use_the_indexes(viewer):
    """The first page and each filtered page are index scans, not a sort of the whole table."""
    from django.db import connection

    from portal.audit.queries import filter_events

    for i in range(50):
        add("act.one", actor_name=f"u{i % 5}", environment="prod" if i % 2 else "")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        for params in ({}, {"actor": "u1"}, {"action": "act.one"}, {"environment": "prod"}, {"outcome": "denied"},
                       {"since": "2020-01-01", "until": "2099-01-01"}):
            qs = filter_events(params).order_by("-seq")[:51]
            plan = qs.explain()
            assert "Sort" not in plan.split("->")[0] and "Index" in plan, (params, plan)
        cursor.execute("RESET enable_seqscan")


def test_a_time_range_is_walked_as_a_seq_range_and_stays_exact(clock, viewer, client):
    """since/until become bounds on seq (one index lookup each), so a range far in the past is as cheap
    as the first page; time never goes back along the chain, so the bounds are exact."""
    from datetime import UTC, datetime, timedelta

    from portal.audit.queries import filter_events

    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    for day in range(6):
        clock.set(start + timedelta(days=day))
        add(f"act.day{day}", actor_name="ada")
    clock.set(start + timedelta(days=2, hours=1))  # a clock stepped back: the event keeps the chain's time
    late = add("act.late", actor_name="ada")
    assert late.at == start + timedelta(days=5)
    ats = list(AuditEvent.objects.order_by("seq").values_list("at", flat=True))
    assert ats == sorted(ats)

    def actions(**params):
        return [e.action for e in filter_events(params).order_by("seq")]

    assert actions(since="2025-03-03", until="2025-03-05") == ["act.day2", "act.day3"]
    assert actions(since="2025-03-01T12:00:00Z", until="2025-03-01T12:00:01Z") == ["act.day0"]
    assert actions(until="2025-03-02") == ["act.day0"]
    assert actions(since="2025-03-06") == ["act.day5", "act.late"]
    assert actions(since="2025-04-01") == [] and actions(until="2025-03-01") == []
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        plan = filter_events({"until": "2025-03-03"}).order_by("-seq")[:51].explain()
        cursor.execute("RESET enable_seqscan")
    assert "Index Cond: (seq <" in plan, plan
    client.force_login(viewer)
    body = client.get("/audit/?since=2025-03-03&until=2025-03-05").content.decode()
    assert "<code>act.day2</code>" in body and "<code>act.day3</code>" in body and "<code>act.day4</code>" not in body


@pytest.mark.parametrize("count", [5, 50])
def test_pages_and_api_cost_the_same_queries_whatever_the_events_and_their_targets(
        count, client, viewer, deployment):
    """Readable targets (deployments, jobs, environments, users...) come from the events alone: the page,
    a filtered page and the API run the same queries for 5 events or 50 of every kind."""
    from portal.jobs.services import enqueue_job

    env = deployment.environment
    with transaction.atomic():
        job = enqueue_job("deployment.apply", target=deployment, environment=env, params={"deployment": deployment.pk})
    for i in range(count):
        target = (deployment, job, env, viewer)[i % 4]
        add(f"act.n{i}", actor_name=f"u{i % 3}", target=target, environment=env, changes={"n": [i, i + 1]})
    client.force_login(viewer)
    client.get("/audit/")  # the session and the user's profile are warm, as on any later page
    counts = {}
    for url in ("/audit/", "/audit/?environment=production&action=act.&hide_system=1",
                "/audit/?since=2000-01-01&until=2999-01-01", "/api/v1/audit?limit=50",
                "/api/v1/audit?actor=u1&since=2000-01-01"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts[url] = len(queries)
    # session, user with its profile, roles, the page (a time bound is a subquery of it)
    assert set(counts.values()) == {4}, counts


def test_every_value_in_a_row_is_escaped(client, viewer):
    evil = '<script>alert("x")</script>'
    add(f"act.{evil}", actor_name=evil, environment=evil, changes={evil: [evil, None]}, detail={"reason": evil})
    client.force_login(viewer)
    body = client.get("/audit/").content.decode()
    assert "<script>alert" not in body
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert body.count(escaped) >= 6  # actor, action, environment, field, old value, reason
    assert '<span class="old">' + escaped + '</span> → <span class="new">∅</span>' in body


def test_hiding_gantrys_job_events_keeps_the_job_events_a_person_caused(client, viewer, deployer):
    from portal.audit.queries import filter_events

    add("job.started", actor_name="gantry-worker")
    mine = add("job.cancelled", actor=deployer)
    add("deployment.approve", actor=deployer)

    def actions(**params):
        return [e.action for e in filter_events(params).order_by("seq")]

    assert actions(hide_system="1", action="job.") == ["job.cancelled"]
    assert actions(hide_system="1", action="job.cancelled") == ["job.cancelled"]
    assert actions(hide_system="1", action="job.started") == []
    assert actions(hide_system="1") == ["job.cancelled", "deployment.approve"]
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        plan = filter_events({"hide_system": "1", "action": "job.started"}).order_by("-seq")[:51].explain()
        cursor.execute("RESET enable_seqscan")
    assert "audit_person_job_seq" in plan, plan
    client.force_login(viewer)
    assert f"?seq={mine.seq}" in client.get("/audit/?hide_system=1&action=job.").content.decode()
