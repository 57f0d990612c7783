"""Separation of duties and access review against a known, seeded history."""
import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.compliance.reports import access_review, separation_of_duties
from deployments.models import Approval, Deployment, Release
from portal.accounts import services as accounts
from portal.audit.services import record

pytestmark = pytest.mark.django_db
HASH = "a" * 64


@pytest.fixture
def history(make_env, make_service, make_user):
    """Eight deployments whose findings are known in advance."""
    prod = make_env("prod", tier="production", required_approvals=1)
    staging = make_env("staging", tier="staging")
    web = make_service("web")
    dee, abe, ann, carl = (make_user(n) for n in ("dee", "abe", "ann", "carl"))
    now = timezone.now()

    def deployment(version, env=prod, state="succeeded", author=None, days_ago=1, **extra):
        rel = Release.objects.create(service=web, version=version, image=f"r.example.com/web:{version}",
                                     created_by=author or dee)
        d = Deployment.objects.create(release=rel, environment=env, service=web, state=state, requested_by=dee,
                                      image=rel.image, manifest_hash=HASH, **extra)
        Deployment.objects.filter(pk=d.pk).update(requested_at=now - timedelta(days=days_ago))
        return d

    def approve(d, user, manifest_hash=HASH):
        Approval.objects.create(deployment=d, user=user, decision="approve", image=d.image, manifest_hash=manifest_hash)

    ok = deployment("1.0.1")
    approve(ok, abe)
    own = deployment("1.0.2")
    approve(own, dee)
    by_author = deployment("1.0.3", author=carl)
    approve(by_author, carl)
    glass = deployment("1.0.4", break_glass=True, break_glass_reason="payments down")
    approve(glass, abe)
    approve(glass, ann)
    record("deployment.running", actor_name="gantry-worker", target=glass, environment=prod,
           detail={"break_glass": True, "gate": {"window_open": True, "frozen": True, "freeze_reason": "Black Friday"}})
    record("deployment.running", actor_name="gantry-worker", target=ok, environment=prod,
           detail={"gate": {"window_open": True, "frozen": False, "freeze_reason": ""}})
    in_staging = deployment("1.0.5", env=staging)
    waiting = deployment("1.0.6", state="pending_approval")
    old = deployment("1.0.7", days_ago=40)
    stale = deployment("1.0.8")
    approve(stale, abe, manifest_hash="b" * 64)
    return {"ok": ok, "own": own, "by_author": by_author, "glass": glass, "in_staging": in_staging,
            "waiting": waiting, "old": old, "stale": stale, "since": (now - timedelta(days=30)).date().isoformat()}


def ids(rows):
    return [r["deployment"] for r in rows]


def test_separation_of_duties_finds_what_was_seeded(history, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        report = separation_of_duties({"since": history["since"]})
    h = history
    assert ids(report["without_independent_approval"]) == [h["own"].pk, h["by_author"].pk, h["stale"].pk]
    assert [r["author"] for r in report["without_independent_approval"]] == ["dee", "carl", "dee"]
    assert [(r["deployment"], r["approver"]) for r in report["self_approvals"]] == [(h["own"].pk, "dee")]
    assert [(r["deployment"], r["reason"], r["approvers"]) for r in report["break_glass"]] == [
        (h["glass"].pk, "payments down", ["abe", "ann"])]
    [outside] = report["outside_windows_or_freezes"]
    assert (outside["deployment"], outside["frozen"], outside["freeze_reason"]) == (h["glass"].pk, True, "Black Friday")
    assert outside["url"] == f"/deployments/{h['glass'].pk}/"
    # the deployment from 40 days ago counts once the period includes it
    everything = separation_of_duties({})
    assert h["old"].pk in ids(everything["without_independent_approval"])
    # one environment instead of all production ones
    assert separation_of_duties({"environment": "staging"})["without_independent_approval"][0]["deployment"] == \
        h["in_staging"].pk


def test_the_report_costs_the_same_queries_with_more_deployments(history, django_assert_max_num_queries):
    for n in range(30):
        record("deployment.running", actor_name="gantry-worker", target=history["glass"], environment="prod",
               detail={"gate": {"window_open": False, "frozen": False, "freeze_reason": ""}})
        d = Deployment.objects.create(release=history["own"].release, environment=history["own"].environment,
                                      service=history["own"].service, state="succeeded", requested_by=history["own"].requested_by,
                                      image="x", manifest_hash=HASH, break_glass=True, break_glass_reason=f"r{n}")
        Approval.objects.create(deployment=d, user=d.requested_by, decision="approve", image="x", manifest_hash=HASH)
    with django_assert_max_num_queries(6):
        report = separation_of_duties({})
    assert len(report["break_glass"]) == 31


def test_the_api_and_the_page_with_csv(history, api, make_user, client):
    auditor = make_user("audrey", "viewer")
    answer = api(auditor).get("/api/v1/reports/separation-of-duties", {"since": history["since"]})
    assert answer.status_code == 200
    assert ids(answer.json()["self_approvals"]) == [history["own"].pk]
    assert api(auditor).get("/api/v1/reports/separation-of-duties", {"since": "yesterday"}).status_code == 400
    assert api(make_user("dora", "deployer")).get("/api/v1/reports/separation-of-duties").status_code == 403
    client.force_login(auditor)
    page = client.get("/compliance/separation-of-duties/", {"since": history["since"]})
    assert page.status_code == 200
    html = page.content.decode()
    assert "payments down" in html and f"/deployments/{history['own'].pk}/evidence/" in html
    rows = list(csv.reader(io.StringIO(b"".join(client.get("/compliance/separation-of-duties/", {
        "since": history["since"], "format": "csv"}).streaming_content).decode())))
    assert rows[0][0] == "finding"
    assert ["self_approvals", str(history["own"].pk)] == rows[4][:2]
    assert sum(1 for r in rows if r[0] == "without_independent_approval") == 3
    bad = client.get("/compliance/separation-of-duties/", {"until": "2026-02-30"})
    assert bad.status_code == 400 and "not a real date" in bad.content.decode()


def test_access_review_rebuilds_roles_at_past_moments(make_env, api, django_assert_max_num_queries):
    prod = make_env("prod", tier="production")
    start = timezone.now()
    accounts.grant_role(None, "ada", "admin", operator="setup")
    from django.contrib.auth import get_user_model

    ada = get_user_model().objects.get(username="ada")
    accounts.grant_role(ada, "bob", "deployer")
    accounts.grant_role(ada, "cat", "approver", environment=prod)
    middle = timezone.now()
    bob_deployer = ada.role_assignments.model.objects.get(user__username="bob", role="deployer")
    accounts.revoke_role(ada, bob_deployer)
    accounts.grant_role(ada, "bob", "viewer")
    end = timezone.now()

    def held(report):
        return sorted((r["user"], r["role"], r["scope"], r["granted_by"]) for r in report["held"])

    assert access_review({"at": start.isoformat()})["held"] == []
    with django_assert_max_num_queries(2):
        then = access_review({"at": middle.isoformat(), "since": middle.isoformat(), "until": end.isoformat()})
    assert held(then) == [("ada", "admin", "global", "setup"), ("bob", "deployer", "global", "ada"),
                          ("cat", "approver", "prod", "ada")]
    assert [(c["action"], c["user"], c["role"], c["by"]) for c in then["changes"]] == [
        ("revoke", "bob", "deployer", "ada"), ("grant", "bob", "viewer", "ada")]
    now = access_review({})
    assert held(now) == [("ada", "admin", "global", "setup"), ("bob", "viewer", "global", "ada"),
                         ("cat", "approver", "prod", "ada")]
    # what the log rebuilds for now is what the role table says
    from portal.accounts.models import RoleAssignment

    table = sorted((a.user.username, a.role, a.environment.slug if a.environment_id else "global")
                   for a in RoleAssignment.objects.select_related("user", "environment"))
    assert [h[:3] for h in held(now)] == table
    answer = api(ada).get("/api/v1/reports/access", {"at": middle.isoformat()})
    assert answer.status_code == 200 and len(answer.json()["held"]) == 3
    assert api(ada).get("/api/v1/reports/access", {"at": "2026-11-21T03:00:00"}).status_code == 400


def test_the_access_page_and_csv(make_env, client):
    accounts.grant_role(None, "ada", "admin", operator="setup")
    accounts.grant_role(None, "vic", "viewer", operator="setup")
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="vic"))
    page = client.get("/compliance/access/", {"since": "2020-01-01"})
    assert page.status_code == 200 and "Roles held at" in page.content.decode()
    body = b"".join(client.get("/compliance/access/", {"format": "csv"}).streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:4] == ["section", "user", "role", "scope"]
    assert sorted(r[1] for r in rows[1:]) == ["ada", "vic"]
