"""Evidence packs: built from the audit events of a deployment, checked offline."""
import copy
import datetime
import hashlib
import io
import json
import zipfile

import pytest

from deployments import actions
from deployments.compliance.evidence import build_pack, pack_sha256
from deployments.models import Deployment
from deployments.monitoring import verification as verifying
from deployments.monitoring.models import Verification
from environments.models import Environment
from portal.audit.models import AuditEvent

from .conftest import behind_gantrys_back, release, run, texts, verify_file

pytestmark = pytest.mark.django_db
CHECKLIST = ["Release notes read", "On-call informed"]


def approved_deployment(people, version="1.0.0"):
    rel = release(people["dee"], version)
    deployment = actions.request_deployment(people["dee"], {"release": rel.pk, "environment": "prod"})
    assert deployment.state == "pending_approval"
    actions.approve_deployment(people["abe"], deployment.pk, comment="looks right", checklist=CHECKLIST)
    return run(deployment)


def test_an_approved_deployment_tells_who_approved_what_under_which_rules(people, prod, web, api, auditor):
    deployment = approved_deployment(people)
    assert deployment.state == "succeeded", deployment.error
    answer = api(auditor).get(f"/api/v1/deployments/{deployment.pk}/evidence")
    assert answer.status_code == 200
    pack = answer.json()
    assert answer["X-Evidence-SHA256"] == pack["sha256"] == pack_sha256(pack)
    assert answer.content.decode().lstrip("{\n ").startswith('"integrity": "verified')
    assert pack["verified"] is True
    [release_text] = texts(pack, "release")
    assert "web 1.0.0" in release_text and "git 3f2a9c1" in release_text and "c" * 64 in release_text
    assert texts(pack, "request")[0].startswith("Requested by dee at ")
    [rules] = texts(pack, "rules_at_request")
    assert "1 approval(s) required" in rules and "self-approval prevented" in rules and "checklist of 2" in rules
    [approval] = [s for s in pack["statements"] if s["key"] == "approval"]
    assert approval["facts"]["user"] == "abe"
    assert approval["facts"]["manifest_hash"] == deployment.manifest_hash
    assert approval["facts"]["image"] == deployment.image
    assert approval["facts"]["checklist"] == CHECKLIST
    assert approval["facts"]["counted"] is True
    assert approval["facts"]["gate"] == {"window_open": True, "frozen": False, "freeze_reason": ""}
    assert "comment: looks right" in approval["text"]
    assert texts(pack, "separation_of_duties") == ["Approved by someone other than the requester: abe."]
    assert any(t.startswith("Succeeded at ") for t in texts(pack, "outcome"))
    [job] = [s for s in pack["statements"] if s["key"] == "job"]
    assert job["facts"]["matches"] is True and "applied Deployment prod/web" in pack["attachments"]["job_logs"][job["facts"]["job"]]
    # every statement names the events behind it, with their hashes
    seqs = {e["seq"]: e["hash"] for e in pack["events"]}
    assert all(seqs[ref["seq"]] == ref["hash"] for s in pack["statements"] for ref in s["events"])
    # an edit of the rules afterwards does not change what the pack says was in force
    Environment.objects.filter(pk=prod.pk).update(required_approvals=3, prevent_self_approval=False, checklist=[])
    again = build_pack(deployment)
    assert texts(again, "rules_at_request") == [rules]
    assert next(s for s in again["statements"] if s["key"] == "approval")["facts"]["rules"]["required_approvals"] == 1


def test_only_auditors_get_packs(people, prod, web, api):
    deployment = approved_deployment(people)
    answer = api(people["dee"]).get(f"/api/v1/deployments/{deployment.pk}/evidence")
    assert answer.status_code == 403
    assert "auditor" in answer.json()["detail"]
    assert api(people["ada"]).get("/api/v1/deployments/999999/evidence").status_code == 404


def test_a_rejected_deployment(people, prod, web):
    rel = release(people["dee"], "1.0.0")
    deployment = actions.request_deployment(people["dee"], {"release": rel.pk, "environment": "prod"})
    actions.reject_deployment(people["abe"], deployment.pk, comment="no rollback plan")
    pack = build_pack(deployment)
    [approval] = texts(pack, "approval")
    assert approval.startswith("Rejected by abe") and "comment: no rollback plan" in approval
    assert any(t.startswith("Rejected at ") for t in texts(pack, "outcome"))
    assert texts(pack, "separation_of_duties") == ["NOT approved by anyone other than the requester."]
    assert not texts(pack, "job")


def test_a_refused_self_approval_is_in_the_pack(people, prod, web, make_user):
    from portal.accounts.models import RoleAssignment
    from portal.errors import Forbidden

    RoleAssignment.objects.create(user=people["dee"], role="approver", environment=prod)
    rel = release(people["dee"], "1.0.0")
    deployment = actions.request_deployment(people["dee"], {"release": rel.pk, "environment": "prod"})
    with pytest.raises(Forbidden):
        actions.approve_deployment(people["dee"], deployment.pk, checklist=CHECKLIST)
    [refused] = texts(build_pack(deployment), "refused")
    assert refused.startswith("REFUSED: dee tried to approve") and "prevents self-approval" in refused


def test_a_break_glass_deployment_during_a_freeze(people, prod, web):
    from datetime import timedelta

    from django.utils import timezone

    Environment.objects.filter(pk=prod.pk).update(freeze_until=timezone.now() + timedelta(days=2),
                                                  freeze_reason="Black Friday")
    rel = release(people["ada"], "1.0.0")
    deployment = actions.request_deployment(people["ada"], {"release": rel.pk, "environment": "prod",
                                                               "break_glass": {"reason": "payment outage fix"}})
    actions.approve_deployment(people["abe"], deployment.pk, checklist=CHECKLIST)
    assert actions.get_deployment(deployment.pk).state == "pending_approval"  # one more than usual
    actions.approve_deployment(people["ann"], deployment.pk, checklist=CHECKLIST)
    deployment = run(deployment)
    assert deployment.state == "succeeded", deployment.error
    pack = build_pack(deployment)
    assert texts(pack, "break_glass") == ["BREAK-GLASS override requested by ada: payment outage fix"]
    [rules] = texts(pack, "rules_at_request")
    assert "freeze until" in rules and "a FREEZE held (Black Friday)" in rules
    starts = texts(pack, "start")
    assert starts and all("during a freeze (break-glass)" in t for t in starts)
    assert texts(pack, "separation_of_duties") == ["Approved by someone other than the requester: abe, ann."]
    assert pack["deployment"]["break_glass"] is True


def test_a_deployment_rolled_back_by_a_person(people, prod, web, sandbox):
    Environment.objects.filter(pk=prod.pk).update(required_approvals=0, checklist=[])
    first = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.0.0").pk,
                                                             "environment": "prod"}))
    second = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.1.0").pk,
                                                              "environment": "prod"}))
    assert (first.state, second.state) == ("succeeded", "succeeded")
    rollback = actions.request_rollback(people["dee"], second.pk, reason="error rate up")
    assert run(rollback).state == "succeeded"
    pack = build_pack(actions.get_deployment(second.pk))
    assert pack["verified"], pack["integrity"]
    assert texts(pack, "rolled_back")[0].endswith(f"by deployment #{rollback.pk}.")
    [story] = [s for s in pack["statements"] if s["key"] == "rollback"]
    assert story["facts"] == {"deployment": rollback.pk, "requested_by": "dee", "auto": False, "reason": "error rate up",
                             "rule": None}
    assert "back to web 1.0.0" in story["text"] and "it succeeded at" in story["text"]
    # the diff approvers would have reviewed: against what ran before (1.0.0)
    assert str(rollback.pk) in pack["attachments"]["manifests"]
    assert len(texts(pack, "job")) == 2  # the deployment's job and the rollback's


def test_evidence_verify_accepts_a_pack_and_detects_edits(people, prod, web, api, auditor, write_pack):
    deployment = approved_deployment(people)
    pack = api(auditor).get(f"/api/v1/deployments/{deployment.pk}/evidence").json()
    code, out = verify_file(write_pack(pack))
    assert code == 0, out
    assert f"evidence pack intact: deployment #{deployment.pk}" in out

    edited = copy.deepcopy(pack)
    edited["statements"][0]["text"] = edited["statements"][0]["text"].replace("1.0.0", "1.0.1")
    code, out = verify_file(write_pack(edited, "edited.json"))
    assert code == 1 and "SHA-256 does not match" in out and "statement 1 does not follow" in out

    # an editor who also recomputes the pack's SHA-256 is caught by the events' hashes
    forged = copy.deepcopy(pack)
    approve = next(e for e in forged["events"] if e["action"] == "deployment.approve")
    approve["actor"] = "mallory"
    forged["sha256"] = pack_sha256(forged)
    code, out = verify_file(write_pack(forged, "forged.json"))
    assert code == 1 and f"audit event #{approve['seq']}: content does not match its hash" in out

    # a swapped job log no longer matches the hash its job recorded when it ended
    swapped = copy.deepcopy(pack)
    job_id = next(iter(swapped["attachments"]["job_logs"]))
    swapped["attachments"]["job_logs"][job_id] = ["all good"]
    swapped["sha256"] = pack_sha256(swapped)
    code, out = verify_file(write_pack(swapped, "swapped.json"))
    assert code == 1 and "does not follow from the audit events" in out


def test_a_pack_whose_events_fail_verification_says_so_first(people, prod, web, api, auditor):
    deployment = approved_deployment(people)
    behind_gantrys_back("UPDATE audit_auditevent SET detail = jsonb_set(detail, '{comment}', '\"edited\"') "
                        "WHERE action = 'deployment.approve'")
    answer = api(auditor).get(f"/api/v1/deployments/{deployment.pk}/evidence")
    pack = answer.json()
    assert pack["verified"] is False
    assert answer.content.decode().lstrip("{\n ").startswith('"integrity": "AUDIT EVENTS FAIL VERIFICATION: audit event #')
    assert "content does not match its hash" in pack["integrity"]


def test_the_printable_page_and_the_zip(people, prod, web, client, auditor, tmp_path):
    deployment = approved_deployment(people)
    client.force_login(auditor)
    page = client.get(f"/deployments/{deployment.pk}/evidence/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "verified: the" in html and "Approved by abe" in html and "compliance.css" in html
    assert page["X-Evidence-SHA256"]
    detail = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert f"/deployments/{deployment.pk}/evidence/" in detail
    download = client.get(f"/deployments/{deployment.pk}/evidence.zip")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    names = archive.namelist()
    assert "pack.json" in names and f"manifests/deployment-{deployment.pk}.yaml" in names
    assert any(n.startswith("job-") and n.endswith(".log") for n in names)
    assert archive.read("README.txt").decode().startswith("verified: the")
    pack = json.loads(archive.read("pack.json"))
    assert pack["sha256"] == download["X-Evidence-SHA256"]
    assert "image: registry.example.com/shop/web:1.0.0@" in archive.read(f"manifests/deployment-{deployment.pk}.yaml").decode()
    path = tmp_path / "pack.zip"
    path.write_bytes(download.content)
    assert verify_file(path)[0] == 0


def test_the_pack_carries_the_diff_the_approver_reviewed(people, prod, web):
    approved_deployment(people, "1.0.0")
    second = approved_deployment(people, "1.1.0")
    pack = build_pack(second)
    [approval] = [s for s in pack["statements"] if s["key"] == "approval"]
    first_id = approval["facts"]["diff"]["against"]
    assert first_id and first_id != second.pk
    [diff] = [s for s in pack["statements"] if s["key"] == "diff"]
    assert diff["facts"]["matches"] is True
    text = pack["attachments"]["diff"]["text"]
    assert "-" in text and "web:1.1.0@" in text and "web:1.0.0@" in text


def _verify_step(deployment, seconds):
    v = Verification.objects.get(deployment_id=deployment.pk)
    verifying.evaluate(v.pk, now=v.started_at + datetime.timedelta(seconds=seconds))
    return Verification.objects.get(pk=v.pk)


def test_an_automatically_rolled_back_deployment_names_the_reason_and_the_rule(people, prod, web, sandbox, api, auditor):
    Environment.objects.filter(pk=prod.pk).update(required_approvals=0, checklist=[])
    first = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.0.0").pk,
                                                             "environment": "prod"}))
    v = Verification.objects.get(deployment_id=first.pk)
    verifying.evaluate(v.pk, now=v.ends_at)
    assert Verification.objects.get(pk=v.pk).state == "passed"
    second = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.1.0").pk,
                                                              "environment": "prod"}))
    sandbox.set_fault("web", "fail_probe")
    for seconds in (0, 15, 30):  # three failed probes in a row: the default threshold
        v = _verify_step(second, seconds)
    assert v.state == "failed", v.reason
    sandbox.set_fault("web", "clear")
    rollback = run(Deployment.objects.get(rollback_of=second))
    assert rollback.state == "succeeded" and rollback.requested_by is None

    pack = api(auditor).get(f"/api/v1/deployments/{second.pk}/evidence").json()
    assert pack["verified"], pack["integrity"]
    [story] = [s for s in pack["statements"] if s["key"] == "rollback"]
    assert story["facts"]["auto"] is True and story["facts"]["requested_by"] == "Gantry (automatic)"
    assert story["facts"]["reason"].startswith("verification failed: ")
    assert "3 times in a row" in story["facts"]["reason"]
    rule = story["facts"]["rule"]
    assert (rule["kind"], rule["name"], rule["failure_threshold"]) == ("probe", "health probe /health", 3)
    assert story["text"].startswith(f"AUTOMATIC rollback #{rollback.pk} requested by Gantry (automatic) at ")
    assert "triggered by the rule 'health probe /health' (3 failed probes in a row" in story["text"]
    assert "back to web 1.0.0" in story["text"] and "it succeeded at" in story["text"]
    [failed] = [s for s in pack["statements"] if s["key"] == "verification" and s["facts"]["state"] == "failed"]
    assert failed["facts"]["rule"] == rule and "failed rule 'health probe /health'" in failed["text"]
    # the statements are backed by the audit events the pack carries
    seqs = {e["seq"] for e in pack["events"]}
    assert all(ref["seq"] in seqs for ref in story["events"]) and len(story["events"]) == 2
    [rolled_back] = texts(pack, "rolled_back")
    assert rolled_back.endswith(f"by deployment #{rollback.pk}.")


def test_each_decision_records_the_dry_run_its_approver_was_shown(people, prod, web, client, api, auditor):
    rel = release(people["dee"], "1.0.0")
    deployment = actions.request_deployment(people["dee"], {"release": rel.pk, "environment": "prod"})
    client.force_login(people["abe"])
    page = client.get(f"/deployments/{deployment.pk}/preview/")
    assert page.status_code == 200 and "server-side dry run passed" in page.content.decode()
    assert client.get(f"/deployments/{deployment.pk}/preview/").status_code == 200  # a reload shows the same
    seen = list(AuditEvent.objects.filter(action="deployment.dry_run", actor="abe").order_by("seq"))
    assert len(seen) == 1  # (the new Service's address, picked anew by each dry run, is left out of the diff)
    shown = seen[-1]
    assert shown.outcome == "success" and shown.detail["manifest_hash"] == deployment.manifest_hash
    assert {(o["kind"], o["name"], o["action"]) for o in shown.detail["objects"]} >= {("Deployment", "web", "create")}
    assert all(o["diff_lines"] > 0 and len(o["diff_sha256"]) == 64 for o in shown.detail["objects"] if o["action"] != "unchanged")

    actions.approve_deployment(people["abe"], deployment.pk, comment="saw it", checklist=CHECKLIST)
    approve = AuditEvent.objects.get(action="deployment.approve", actor="abe")
    assert approve.detail["dry_run"] == {"shown": True, "event_seq": shown.seq} | shown.detail

    run(deployment)
    pack = api(auditor).get(f"/api/v1/deployments/{deployment.pk}/evidence").json()
    assert pack["verified"], pack["integrity"]
    [approval] = [s for s in pack["statements"] if s["key"] == "approval"]
    assert approval["facts"]["dry_run"]["sha256"] == shown.detail["sha256"]
    assert f"the dry run on their screen ({shown.detail['sha256'][:12]}) passed: " in approval["text"]
    assert "Deployment web create (" in approval["text"]
    dry_runs = [s for s in pack["statements"] if s["key"] == "dry_run"]
    assert [d["events"][0]["seq"] for d in dry_runs] == [e.seq for e in seen]
    assert all(d["text"].startswith("Dry run shown to abe at ") for d in dry_runs)


def test_a_decision_without_the_approval_page_says_no_dry_run_was_shown(people, prod, web):
    deployment = approved_deployment(people)  # decided through the service, as the API does
    pack = build_pack(deployment)
    [approval] = [s for s in pack["statements"] if s["key"] == "approval"]
    assert approval["facts"]["dry_run"] == {"shown": False}
    assert "no dry run was on their screen (decided without the approval page)" in approval["text"]


def test_an_automatic_rollback_after_a_metric_rule_names_that_rule(people, prod, web, monkeypatch):
    """The rule that failed is a Prometheus rule here (its value given by the test): the pack names it
    with its query, threshold and the value that broke it."""
    from deployments.monitoring.models import VerificationSettings
    from portal import prometheus

    Environment.objects.filter(pk=prod.pk).update(required_approvals=0, checklist=[])
    rule = {"name": "error rate", "query": 'sum(rate(http_errors{namespace="${namespace}"}[1m]))', "op": ">",
            "threshold": 0.05, "for_seconds": 0}
    VerificationSettings.objects.create(environment=prod, prometheus_url="http://prometheus.example:9090", rules=[rule])
    value = {"now": 0.0}
    monkeypatch.setattr(prometheus, "query", lambda url, query: value["now"])
    first = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.0.0").pk,
                                                             "environment": "prod"}))
    v = Verification.objects.get(deployment_id=first.pk)
    verifying.evaluate(v.pk, now=v.ends_at)
    assert Verification.objects.get(pk=v.pk).state == "passed"
    second = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.1.0").pk,
                                                              "environment": "prod"}))
    value["now"] = 0.2
    assert _verify_step(second, 0).state == "failed"
    run(Deployment.objects.get(rollback_of=second))

    pack = build_pack(actions.get_deployment(second.pk))
    assert pack["verified"], pack["integrity"]
    [story] = [s for s in pack["statements"] if s["key"] == "rollback"]
    recorded = story["facts"]["rule"]
    assert (recorded["kind"], recorded["name"], recorded["op"], recorded["threshold"], recorded["value"]) == (
        "metric", "error rate", ">", 0.05, 0.2)
    assert 'namespace="prod"' in recorded["query"]  # the query as it ran, placeholders filled in
    assert "error rate was 0.2 (> 0.05)" in story["facts"]["reason"]
    assert "triggered by the rule 'error rate' (sum(rate(http_errors{namespace=\"prod\"}[1m])) > 0.05 for 0 s; value 0.2)" \
        in story["text"]


def test_the_same_dry_run_shown_again_is_recorded_once(people, prod, web, monkeypatch):
    from deployments import preview

    rel = release(people["dee"], "1.0.0")
    deployment = actions.request_deployment(people["dee"], {"release": rel.pk, "environment": "prod"})
    result = {"ok": False, "problems": ["Deployment web: quota exceeded"],
              "objects": [{"kind": "Deployment", "name": "web", "action": "update", "diff": ["-a", "+b"]}]}
    monkeypatch.setattr(preview, "preview", lambda d: result)
    for _ in range(3):
        preview.show_dry_run(people["abe"], deployment)
    preview.show_dry_run(people["ann"], deployment)
    events = AuditEvent.objects.filter(action="deployment.dry_run").order_by("seq")
    assert [(e.actor, e.outcome) for e in events] == [("abe", "failure"), ("ann", "failure")]
    assert events[0].detail["problems"] == ["Deployment web: quota exceeded"]
    assert events[0].detail["objects"] == [{"kind": "Deployment", "name": "web", "action": "update", "diff_lines": 2,
                                            "diff_sha256": hashlib.sha256(b"-a\n+b").hexdigest()}]
    actions.approve_deployment(people["abe"], deployment.pk, checklist=CHECKLIST)
    pack = build_pack(actions.get_deployment(deployment.pk))
    [approval] = [s for s in pack["statements"] if s["key"] == "approval"]
    assert "FOUND PROBLEMS: Deployment web: quota exceeded: Deployment web update (2 diff lines)" in approval["text"]
