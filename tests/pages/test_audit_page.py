import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.audit.services import record
from tests.pages.conftest import events, text


def add(action, *, actor_name="ci-bot", outcome="success", environment=None, changes=None, detail=None):
    with transaction.atomic():
        return record(action, actor_name=actor_name, outcome=outcome, environment=environment, changes=changes,
                      detail=detail)


def test_it_lists_events_with_changes_as_old_to_new(login, viewer):
    add("environment.rules_update", actor_name="ada", environment="prod", changes={"required_approvals": [1, 2]})
    body = text(login(viewer).get("/audit/"))
    assert "environment.rules_update" in body and "ada" in body and "prod" in body
    assert '<span class="field-name">required_approvals</span>: <span class="old">1</span> → <span class="new">2</span>' \
        in body
    assert "outcome-success" in body


def test_it_shows_the_reason_of_a_denied_event(login, viewer):
    add("environment.create", outcome="denied", detail={"reason": "needs the admin role"})
    body = text(login(viewer).get("/audit/"))
    assert "outcome-denied" in body and "needs the admin role" in body


def test_it_shows_times_in_the_users_zone(login, viewer, client):
    event = add("x.y")
    client.cookies["gantry_tz"] = "America/New_York"
    body = text(login(viewer).get("/audit/"))
    local = timezone.localtime(event.at, timezone=__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert local.strftime("%Y-%m-%d %H:%M:%S") + f" {local.tzname()}" in body  # to the second, with the zone


@pytest.mark.parametrize("query, shown, hidden", [
    ("actor=ada", "act.one", "act.two"),
    ("action=act.two", "act.two", "act.one"),
    ("action=act.", "act.one", "other.three"),
    ("environment=prod", "act.one", "act.two"),
    ("outcome=denied", "act.two", "act.one"),
])
def test_it_filters_events(login, viewer, query, shown, hidden):
    add("act.one", actor_name="ada", environment="prod")
    add("act.two", actor_name="bob", outcome="denied")
    add("other.three", actor_name="bob")
    body = text(login(viewer).get(f"/audit/?{query}"))
    assert f"<code>{shown}</code>" in body and f"<code>{hidden}</code>" not in body


def test_it_filters_by_time(login, viewer):
    add("act.one")
    until = (timezone.now() - timedelta(days=1)).date().isoformat()
    body = text(login(viewer).get(f"/audit/?until={until}"))
    assert "<code>act.one</code>" not in body and "No events match these filters" in body


def test_it_explains_a_bad_filter(login, viewer):
    add("act.one")
    response = login(viewer).get("/audit/?since=yesterday-ish")
    assert response.status_code == 400
    assert "since: &#x27;yesterday-ish&#x27; is not a date" in text(response)
    assert "<code>act.one</code>" not in text(response)


def test_it_paginates_fifty_events_a_page_newest_first(login, viewer):
    client = login(viewer)  # signing in is audited too: before the 55, so it is the oldest
    for i in range(55):
        add(f"act.n{i}")
    first = text(client.get("/audit/"))
    older = AuditEvent.objects.get(action="act.n5").seq  # keyset pages: "Older" continues before the last one shown
    assert f'href="?before={older}"' in first
    second = text(client.get(f"/audit/?before={older}"))
    assert "<code>act.n54</code>" in first and "<code>act.n5</code>" in first and "<code>act.n4</code>" not in first
    assert "<code>act.n4</code>" in second and "<code>act.n0</code>" in second


def test_it_links_downloads_with_the_same_filters(login, viewer):
    body = text(login(viewer).get("/audit/?actor=ada&outcome=denied&page=1"))
    assert 'href="/audit/export?format=csv&amp;actor=ada&amp;outcome=denied"' in body
    assert 'href="/audit/export?format=jsonl&amp;actor=ada&amp;outcome=denied"' in body


def test_it_downloads_filtered_jsonl(login, viewer):
    add("act.one", actor_name="ada")
    add("act.two", actor_name="bob")
    response = login(viewer).get("/audit/export?format=jsonl&actor=ada")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["action"] for line in lines] == ["act.one"]
    assert events("audit.export", actor="vic").exists()


def test_it_downloads_csv(login, viewer):
    add("act.one")
    response = login(viewer).get("/audit/export?format=csv")
    content = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    assert content.splitlines()[0].startswith("id,seq,at,actor,action") and "act.one" in content


def test_it_sends_a_bad_export_format_back_to_the_page(login, viewer):
    response = login(viewer).get("/audit/export?format=xml&actor=ada", follow=True)
    assert "format: must be csv or jsonl" in text(response)
    assert not events("audit.export").exists()


@pytest.mark.parametrize("role", ["deployer", "approver"])
def test_it_refuses_the_audit_log_to_users_who_are_not_auditors(login, make_user, role):
    client = login(make_user("sam", role))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export?format=csv").status_code == 403


def test_it_refuses_the_audit_log_to_an_environment_scoped_viewer(login, make_user, make_env):
    client = login(make_user("sam", ("viewer", make_env("dev-a"))))
    assert client.get("/audit/").status_code == 403


def test_it_lets_admins_read_the_audit_log(login, admin):
    assert login(admin).get("/audit/").status_code == 200


@pytest.mark.parametrize("count", [5, 50])
def test_it_costs_the_same_queries_for_5_and_50_events(login, viewer, count, django_assert_max_num_queries):
    client = login(viewer)
    for i in range(count):
        add(f"act.n{i}", changes={"field": [i, i + 1]})
    with django_assert_max_num_queries(6):
        response = client.get("/audit/")
    assert response.status_code == 200
    assert text(response).count("<code>act.n") == count
