"""What the audit events of a deployment record, so its evidence pack is built from facts.

An evidence pack must say which rules were in force when a deployment was requested and approved,
whether the window was open or a freeze held, what each approver ticked and which diff they had in
front of them. Today's environment row cannot answer that after an edit, so the request, each
decision and each start write these snapshots into their audit events.
"""
import hashlib

from django.utils import timezone

from environments import policies as env_rules


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
    from .live import live_deployment
    from .rendering import manifest_diff

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


def decision_facts(deployment, checklist):
    env = deployment.environment
    return {"rules": rules_in_force(env), "gate": gate_state(env), "checklist": list(checklist or []),
            "diff": reviewed_diff(deployment),
            "rendered_manifest_sha256": text_sha256(deployment.rendered_manifest)}


def start_facts(deployment):
    """At queued and running: the window and freeze state the start happened under."""
    return {"gate": gate_state(deployment.environment)}
