"""The statements of an evidence pack: a pure function of the audit events it carries.

`derive_statements` turns the events (and the attachments, checked against the hashes the events
recorded) into the sentences an auditor reads, each naming the events behind it; `evidence_verify`
runs it again offline on a pack's own events and compares.
"""
import hashlib

from deployments.facts import text_sha256

DEPLOYMENT = "deployments.deployment"


def _ref(event):
    return {"id": event["id"], "seq": event["seq"], "hash": event["hash"]}


def _statement(key, text, events, facts=None):
    return {"key": key, "text": text, "facts": facts or {}, "events": [_ref(e) for e in events]}


def _gate_words(gate):
    if not gate:
        return "window and freeze state not recorded"
    words = "the deployment window was " + ("open" if gate.get("window_open") else "CLOSED")
    if gate.get("frozen"):
        words += f"; a FREEZE held ({gate.get('freeze_reason')})"
    else:
        words += "; no freeze"
    return words


def _rules_words(rules):
    if not rules:
        return "the rules in force were not recorded at the time"
    parts = [f"{rules.get('required_approvals')} approval(s) required",
             "self-approval prevented" if rules.get("prevent_self_approval") else "self-approval allowed"]
    windows = rules.get("deployment_windows") or []
    parts.append(f"{len(windows)} deployment window(s)" if windows else "no deployment windows (always open)")
    if rules.get("freeze"):
        parts.append(f"freeze until {rules['freeze'].get('until')}")
    if rules.get("approver_groups"):
        parts.append("approvers from " + ", ".join(rules["approver_groups"]))
    if rules.get("checklist"):
        parts.append(f"checklist of {len(rules['checklist'])} item(s)")
    if rules.get("promotion_from"):
        parts.append(f"must have succeeded in {rules['promotion_from']} first")
    return "; ".join(parts)


def _release_statements(events, attachments):
    """The release, checked against its registration event."""
    statements = []
    created = [e for e in events if e["target_type"] == "deployments.release" and e["action"] == "release.create"]
    release = attachments.get("release") or {}
    facts = {"service": release.get("service"), "version": release.get("version"), "image": release.get("image"),
             "git_sha": release.get("git_sha")}
    problems = []
    for event in created:
        changes = event.get("changes") or {}
        for name in ("version", "image", "git_sha"):
            recorded = (changes.get(name) or [None, None])[1]
            if (recorded or "") != (facts.get(name) or ""):
                problems.append(f"{name} recorded as {recorded!r}")
    text = f"Release {facts['service']} {facts['version']}, image {facts['image']}" + (
        f", git {facts['git_sha']}" if facts.get("git_sha") else "")
    if not created:
        text += " (its registration event is not in the log)"
    if problems:
        text += " — DOES NOT MATCH its registration: " + "; ".join(problems)
    statements.append(_statement("release", text, created, facts | {"matches_record": not problems}))
    return statements


def _request_statements(mine):
    """The request, the rules in force then, a break-glass reason."""
    statements = []
    request = next((e for e in mine if e["action"] in ("deployment.request", "deployment.rollback_request")), None)
    if request is None:
        statements.append(_statement("request", "No request event was found for this deployment.", []))
        detail = {}
    else:
        detail = request.get("detail") or {}
        text = f"Requested by {request['actor']} at {request['at']}"
        if request["action"] == "deployment.rollback_request":
            text = f"Rollback of deployment #{detail.get('rolls_back')} requested by {request['actor']} at {request['at']}"
        if detail.get("start_now"):
            text += ", to start at once"
        statements.append(_statement("request", text + ".", [request], {
            "requested_by": request["actor"], "at": request["at"], "image": detail.get("image"),
            "manifest_hash": detail.get("manifest_hash")}))
        statements.append(_statement("rules_at_request", "Rules in force at the request: " + _rules_words(detail.get("rules"))
                                     + "; " + _gate_words(detail.get("gate")) + ".", [request],
                                     {"rules": detail.get("rules"), "gate": detail.get("gate")}))
        if detail.get("break_glass"):
            statements.append(_statement("break_glass", f"BREAK-GLASS override requested by {request['actor']}: "
                                         f"{detail.get('break_glass_reason')}", [request],
                                         {"reason": detail.get("break_glass_reason")}))
    return statements, request, detail


def _dry_run_words(dry_run, what):
    """A dry run as recorded (deployments.facts.dry_run_summary), in words."""
    if not isinstance(dry_run, dict) or not dry_run.get("shown", True):
        return "no dry run was on their screen (decided without the approval page)"
    words = f"{what} ({dry_run.get('sha256', '')[:12]}) " + (
        "passed" if dry_run.get("ok") else "FOUND PROBLEMS: " + "; ".join(dry_run.get("problems") or []))
    objects = [f"{o.get('kind')} {o.get('name')} {o.get('action')}"
               + (f" ({o.get('diff_lines')} diff lines)" if o.get("diff_lines") else "")
               for o in dry_run.get("objects") or []]
    return words + (": " + ", ".join(objects) if objects else "")


def _approval_statements(mine, request, detail):
    """Each decision (and refused attempt), and whether someone independent approved."""
    statements = []
    final_hash = None
    for event in mine:
        if event["action"] == "deployment.manifests_changed":
            final_hash = ((event.get("changes") or {}).get("manifest_hash") or [None, None])[1]
    final_hash = final_hash or detail.get("manifest_hash")
    approvals = []
    for event in mine:
        if event["action"] not in ("deployment.approve", "deployment.reject"):
            continue
        d = event.get("detail") or {}
        decision = event["action"].split(".")[1]
        if event["outcome"] == "denied":
            statements.append(_statement("refused", f"REFUSED: {event['actor']} tried to {decision} at {event['at']}: "
                                         f"{d.get('reason')}", [event], {"reason": d.get("reason")}))
            continue
        counted = decision == "approve" and d.get("manifest_hash") == final_hash
        words = f"{'Approved' if decision == 'approve' else 'Rejected'} by {event['actor']} at {event['at']}"
        words += f", image {d.get('image')}, manifest hash {d.get('manifest_hash')}"
        if d.get("checklist"):
            words += "; ticked: " + ", ".join(d["checklist"])
        if d.get("comment"):
            words += f"; comment: {d['comment']}"
        if decision == "approve" and not counted:
            words += " (STALE: the manifests changed after this approval)"
        diff = d.get("diff") or {}
        if diff:
            words += (f"; reviewed the diff against deployment #{diff['against']} ({diff.get('lines')} lines, sha256 "
                      f"{diff.get('sha256')})" if diff.get("against") else "; nothing was running before (no diff)")
        if "dry_run" in d:
            words += "; " + _dry_run_words(d["dry_run"], "the dry run on their screen")
        words += ". Rules in force then: " + _rules_words(d.get("rules")) + "; " + _gate_words(d.get("gate")) + "."
        approval = {"user": event["actor"], "decision": decision, "at": event["at"], "image": d.get("image"),
                    "manifest_hash": d.get("manifest_hash"), "checklist": d.get("checklist"),
                    "comment": d.get("comment"), "rules": d.get("rules"), "gate": d.get("gate"), "diff": diff,
                    "dry_run": d.get("dry_run"), "counted": counted}
        approvals.append(approval)
        statements.append(_statement("approval", words, [event], approval))
    requester = request["actor"] if request else None
    independent = sorted({a["user"] for a in approvals if a["decision"] == "approve" and a["user"] != requester})
    if request is not None and request["action"] == "deployment.request":
        statements.append(_statement(
            "separation_of_duties",
            (f"Approved by someone other than the requester: {', '.join(independent)}." if independent else
             "NOT approved by anyone other than the requester."), [e for e in mine if e["action"] == "deployment.approve"
                                                                   and e["outcome"] == "success"],
            {"independent_approvers": independent}))
    return statements, approvals


def _attachment_statements(own, attachments, approvals, request, detail):
    """The diff and manifests attached, checked against the hashes recorded."""
    statements = []
    diff_att = attachments.get("diff") or {}
    reviewed = [a["diff"] for a in approvals if a.get("diff")]
    if reviewed:
        recorded = reviewed[-1]
        actual = text_sha256(diff_att.get("text") or "")
        ok = recorded.get("sha256") == actual
        statements.append(_statement("diff", "The attached diff " + ("is the one the approvers reviewed (sha256 matches)."
                                                                      if ok else "DOES NOT MATCH the diff recorded at approval."),
                                     [], {"recorded_sha256": recorded.get("sha256"), "attached_sha256": actual, "matches": ok}))

    manifest_text = (attachments.get("manifests") or {}).get(own)
    recorded_sha = detail.get("rendered_manifest_sha256")
    if manifest_text is not None:
        if recorded_sha:
            ok = recorded_sha == text_sha256(manifest_text)
            text = ("The attached rendered manifests are those recorded at the request (sha256 matches)." if ok else
                    "The attached rendered manifests DO NOT MATCH those recorded at the request.")
        else:
            ok, text = None, "The rendered manifests' hash was not recorded at the request."
        statements.append(_statement("manifests", text, [request] if request else [],
                                     {"sha256": text_sha256(manifest_text), "matches": ok}))
    return statements


def _lifecycle_statements(mine):
    """Start (with the window and freeze state), outcome, rollback and other events."""
    statements = []
    for event in mine:
        action = event["action"]
        d = event.get("detail") or {}
        if action in ("deployment.queued", "deployment.running"):
            gate = d.get("gate")
            flag = ""
            if gate and (not gate.get("window_open") or gate.get("frozen")):
                flag = " OUTSIDE the rules' window or during a freeze" + (" (break-glass)" if d.get("break_glass") else "")
            statements.append(_statement("start", f"{action.split('.')[1].capitalize()} at {event['at']} by {event['actor']}"
                                         f"{flag}: {_gate_words(gate)}.", [event], {"gate": gate}))
        elif action in ("deployment.succeeded", "deployment.failed", "deployment.cancelled", "deployment.rejected"):
            words = f"{action.split('.')[1].capitalize()} at {event['at']}"
            if d.get("error"):
                words += f": {d['error']}"
            statements.append(_statement("outcome", words + ".", [event], {"state": action.split(".")[1]}))
        elif action == "deployment.dry_run":
            shown = _dry_run_words(d, f"Dry run shown to {event['actor']} at {event['at']}")
            statements.append(_statement("dry_run", shown + ".", [event], {"dry_run": d}))
        elif action in ("deployment.verification_passed", "deployment.verification_failed"):
            words = f"Verification {action.rsplit('_', 1)[1]} at {event['at']}: {d.get('reason')}"
            if d.get("rule"):
                words += f"; failed rule {rule_words(d['rule'])}"
            statements.append(_statement("verification", words + ".", [event],
                                         {"state": action.rsplit("_", 1)[1], "reason": d.get("reason"),
                                          "rule": d.get("rule")}))
        elif action == "deployment.rolled_back":
            statements.append(_statement("rolled_back", f"Rolled back at {event['at']} by deployment #{d.get('by')}.",
                                         [event], {"by": d.get("by")}))
        elif action not in ("deployment.request", "deployment.rollback_request", "deployment.approve",
                            "deployment.reject", "deployment.approved", "deployment.pending_approval",
                            "deployment.manifests_changed"):
            statements.append(_statement("event", f"{action} by {event['actor']} at {event['at']} ({event['outcome']}).",
                                         [event], {"detail": d}))
    return statements


def _rollback_statements(events, rollback_ids):
    """Each rollback of this deployment: who, why, to what, how it ended."""
    statements = []
    for rid in sorted(rollback_ids, key=int):
        theirs = [e for e in events if e["target_type"] == DEPLOYMENT and e["target_id"] == rid]
        req = next((e for e in theirs if e["action"] == "deployment.rollback_request"), None)
        end = next((e for e in reversed(theirs) if e["action"] in ("deployment.succeeded", "deployment.failed")), None)
        d = (req or {}).get("detail") or {}
        auto = bool(req and (req.get("actor_id") is None or d.get("auto")))
        who = "Gantry (automatic)" if auto else (req or {}).get("actor")
        words = f"{'AUTOMATIC rollback' if auto else 'Rollback'} #{rid} requested by {who}" + (f" at {req['at']}" if req else "")
        if d.get("reason"):
            words += f", reason: {d['reason']}"
        if d.get("rule"):
            words += f"; triggered by the rule {rule_words(d['rule'])}"
        words += f", back to {d.get('to_release')}" if d.get("to_release") else ""
        words += f"; it {end['action'].split('.')[1]} at {end['at']}." if end else "; it has not finished."
        statements.append(_statement("rollback", words, [e for e in (req, end) if e],
                                     {"deployment": int(rid), "requested_by": who, "auto": auto,
                                      "reason": d.get("reason"), "rule": d.get("rule")}))
    return statements


def rule_words(rule):
    """The verification check that failed, as recorded by deployments.monitoring (probe, metric or unknown rules)."""
    if not isinstance(rule, dict):
        return str(rule)
    kind, name = rule.get("kind"), rule.get("name")
    if kind == "probe":
        return f"'{name}' ({rule.get('failure_threshold')} failed probes in a row: {rule.get('detail')})"
    if kind == "metric":
        return (f"'{name}' ({rule.get('query')} {rule.get('op')} {rule.get('threshold')} for {rule.get('for_seconds')} s; "
                f"value {rule.get('value')})")
    return f"'{name}' ({rule.get('detail')})"


def _job_statements(events, attachments):
    """Each job's log, checked against the hash its job recorded when it ended."""
    statements = []
    logs = attachments.get("job_logs") or {}
    for job_id, lines in logs.items():
        ends = [e for e in events if e["target_type"] == "jobs.job" and e["target_id"] == job_id
                and e["action"] in ("job.succeeded", "job.failed", "job.cancelled")]
        end = ends[-1] if ends else None
        d = (end or {}).get("detail") or {}
        actual = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
        if end is None:
            text, ok = f"Job {job_id}: {len(lines)} log line(s); the job has not finished.", None
        elif d.get("log_sha256"):
            ok = d["log_sha256"] == actual
            text = (f"Job {job_id} {end['action'].split('.')[1]} at {end['at']}; its log of {len(lines)} line(s) is "
                    + ("the one recorded then (sha256 matches)." if ok else "NOT the one recorded then."))
        else:
            ok = None
            text = f"Job {job_id} {end['action'].split('.')[1]} at {end['at']}; its log's hash was not recorded."
        statements.append(_statement("job", text, [end] if end else [], {"job": job_id, "log_sha256": actual,
                                                                          "matches": ok}))
    return statements


def derive_statements(subject, events, attachments):
    """Every statement of the pack, from the events (and attachments checked against them)."""
    own = str(subject["deployment"])
    rollback_ids = {str(i) for i in subject["rollbacks"]}
    mine = [e for e in events if e["target_type"] == DEPLOYMENT and e["target_id"] == own]
    statements = _release_statements(events, attachments)
    told, request, detail = _request_statements(mine)
    decided, approvals = _approval_statements(mine, request, detail)
    return (statements + told + decided + _attachment_statements(own, attachments, approvals, request, detail)
            + _lifecycle_statements(mine) + _rollback_statements(events, rollback_ids)
            + _job_statements(events, attachments))
