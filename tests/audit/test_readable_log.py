"""The audit log as people read it: seconds and zone, targets in words with links, keyset pages."""
import pytest
from django.db import transaction

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
