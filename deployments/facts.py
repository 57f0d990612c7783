"""What the audit events of a deployment record, so its evidence pack is built from facts.

An evidence pack must say which rules were in force when a deployment was requested and approved,
whether the window was open or a freeze held, what each approver ticked and which diff they had in
front of them. Today's environment row cannot answer that after an edit, so the request, each
decision and each start write these snapshots into their audit events.
"""
import hashlib
import json

from django.utils import timezone

from environments import policies as env_rules
from portal.audit.models import AuditEvent

from .live import live_deployment
from .rendering import manifest_diff


def rules_in_force(environment):
    """The environment's protection rules as they are now (JSON-native)."""
    return {
        "tier": environment.tier,
        "required_approvals": environment.required_approvals,
        "prevent_self_approval": environment.prevent_self_approval,
        "deployment_windows": list(environment.deployment_windows or []),
        "freeze": ({"until": environment.freeze_until.isoformat(), "reason": environment.freeze_reason}
                   if environment.freeze_until else None),
        "approver_groups": list(environment.approver_groups or []),
        "checklist": list(environment.checklist or []),
        "promotion_from": environment.promotion_from.slug if environment.promotion_from_id else None,
        "rollback_requires_approval": environment.rollback_requires_approval,
    }


def gate_state(environment, at=None):
    """Whether the deployment window was open and whether a freeze held at `at` (default now)."""
    at = at or timezone.now()
    freeze = env_rules.active_freeze(environment, at)
    return {
        "window_open": env_rules.window_open(environment.deployment_windows, at),
        "frozen": freeze is not None,
        "freeze_reason": freeze["reason"] if freeze else "",
    }


def text_sha256(text):
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


def reviewed_diff(deployment):
    """Which diff an approver had on the approval page: against the live deployment's manifests."""

    live = live_deployment(deployment.service_id, deployment.environment_id)
    if live is None or live.pk == deployment.pk:
        return {"against": None, "sha256": text_sha256(""), "lines": 0}
    lines = manifest_diff(live.rendered_manifest, deployment.rendered_manifest)
    return {"against": live.pk, "sha256": text_sha256("\n".join(lines)), "lines": len(lines)}


def request_facts(deployment):
    env = deployment.environment
    return {"rules": rules_in_force(env), "gate": gate_state(env), "manifest_hash": deployment.manifest_hash,
            "git_sha": deployment.release.git_sha, "kind": deployment.kind,
            "rendered_manifest_sha256": text_sha256(deployment.rendered_manifest)}


def dry_run_summary(deployment, result):
    """What the approval page's dry run showed: its outcome, the problems, each object's change and the
    size and SHA-256 of its diff (the diff text itself stays out of the log: it may be long)."""
    objects = [{"kind": obj["kind"], "name": obj["name"], "action": obj["action"], "diff_lines": len(obj["diff"]),
                "diff_sha256": text_sha256("\n".join(obj["diff"]))} for obj in result.get("objects", [])]
    summary = {"ok": bool(result.get("ok")), "problems": list(result.get("problems", [])), "objects": objects,
               "manifest_hash": deployment.manifest_hash}
    summary["sha256"] = text_sha256(json.dumps(summary, sort_keys=True, separators=(",", ":")))
    return summary


def dry_run_shown(deployment, user):
    """The last dry run the approval page showed `user` for the manifests being decided on (from its
    audit event), or {"shown": False} when they decided without one on screen (the API, say)."""

    event = (AuditEvent.objects.filter(target_type="deployments.deployment", target_id=str(deployment.pk),
                                       action="deployment.dry_run", actor_id=user.pk,
                                       detail__manifest_hash=deployment.manifest_hash)
             .order_by("-seq").values_list("seq", "detail").first())
    if event is None:
        return {"shown": False}
    return {"shown": True, "event_seq": event[0]} | event[1]


def decision_facts(deployment, checklist, user=None):
    env = deployment.environment
    return {"rules": rules_in_force(env), "gate": gate_state(env), "checklist": list(checklist or []),
            "diff": reviewed_diff(deployment),
            "rendered_manifest_sha256": text_sha256(deployment.rendered_manifest)} | (
        {"dry_run": dry_run_shown(deployment, user)} if user is not None else {})


def start_facts(deployment):
    """At queued and running: the window and freeze state the start happened under."""
    return {"gate": gate_state(deployment.environment)}
