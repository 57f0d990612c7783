import json

import pytest
from django.db import transaction

from portal.audit.services import record

pytestmark = pytest.mark.django_db


def seed(n, **extra):
    with transaction.atomic():
        for i in range(n):
            record("test.event", detail={"i": i}, **extra)


def test_it_pages_with_a_cursor(api, viewer):
    seed(7)
    client = api(viewer)
    first = client.get("/api/v1/audit", {"limit": 3, "action": "test.event"}).json()
    assert len(first["results"]) == 3 and first["next"]
    second = client.get("/api/v1/audit", {"limit": 3, "action": "test.event", "cursor": first["next"]}).json()
    third = client.get("/api/v1/audit", {"limit": 3, "action": "test.event", "cursor": second["next"]}).json()
    seqs = [e["seq"] for page in (first, second, third) for e in page["results"]]
    assert len(seqs) == 7 == len(set(seqs))
    assert third["next"] is None
    event = first["results"][0]
    for key in ("id", "at", "actor", "action", "outcome", "target", "environment", "hash", "prev_hash"):
        assert key in event


def test_it_filters_by_actor_outcome_and_environment(api, viewer):
    with transaction.atomic():
        record("x.one", actor_name="alice", environment="prod")
        record("x.two", actor_name="bob", outcome="denied", environment="dev")
    client = api(viewer)
    assert [e["action"] for e in client.get("/api/v1/audit", {"actor": "alice"}).json()["results"]] == ["x.one"]
    assert [e["action"] for e in client.get("/api/v1/audit", {"outcome": "denied"}).json()["results"]] == ["x.two"]
    assert [e["action"] for e in client.get("/api/v1/audit", {"environment": "dev"}).json()["results"]] == ["x.two"]


def test_a_bad_filter_is_a_400(api, viewer):
    response = api(viewer).get("/api/v1/audit", {"since": "yesterday-ish"})
    assert response.status_code == 400
    assert "since" in response.json()["detail"]


@pytest.mark.parametrize("role", ["deployer", "approver"])
def test_non_auditors_cannot_read_the_audit_log(api, make_user, role):
    assert api(make_user("u", role)).get("/api/v1/audit").status_code == 403


def test_export_jsonl_streams_verifiable_lines(api, viewer):
    seed(3)
    response = api(viewer).get("/api/v1/audit/export", {"format": "jsonl"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [row["seq"] for row in lines][:3] == [1, 2, 3]
    assert lines[1]["prev_hash"] == lines[0]["hash"]


def test_export_csv_has_a_header_and_rows(api, viewer):
    seed(2)
    response = api(viewer).get("/api/v1/audit/export", {"format": "csv"})
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[0].startswith("id,seq,at,actor,action,outcome")
    assert text.count("test.event") == 2
    assert response["Content-Disposition"].endswith('.csv"')
