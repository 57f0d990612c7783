"""What users do to deployments: request one, approve or reject it, cancel it, roll back.

Each action asks `deployments.policies` who may, audits a refusal, and changes state only
through `deployments.state` with the environment locked.
"""
from django.db import transaction

from environments import policies as env_rules
from environments.models import Environment
from portal import validation
from portal.accounts import policies as roles
from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, deny
from portal.jobs.services import cancel_job

from . import facts, policies
from .choices import APPROVE, DEPLOY, DEPLOYMENT_TRANSITIONS, REJECT, ROLLBACK
from .choices import DeploymentState as S
from .manifests import ManifestError, environment_policy_problems, parse_documents
from .models import Approval, Deployment, Release
from .monitoring.policies import promotion_refusal
from .notifications import notify
from .rendering import manifest_hash, render_text
from .schemas import BreakGlass, DeploymentApproval, DeploymentRejection, Reason
from .state import StateError, advance, get_deployment, lock_environment, locked_deployment, move, start_next_queued


class ManifestsChanged(Conflict):
    """The approver reviewed other manifests than those an approval would now be bound to."""


def _parse_request(user, data):
    """(release, environment, start_now, break_glass) of a request; InvalidInput naming what is unknown."""
    errors = []
    release_id = data.get("release")
    release = None
    if isinstance(release_id, int) and not isinstance(release_id, bool):
        release = Release.objects.select_related("service").filter(pk=release_id).first()
    if release is None:
        errors.append(f"release: no release with id {validation.shown(release_id)}")
    slug = data.get("environment")
    safe_slug = isinstance(slug, str) and not validation.unsafe_character(slug)
    environment = Environment.objects.filter(slug=slug).first() if safe_slug else None
    if environment is None or not roles.can_view_environment(user, environment):
        errors.append(f"environment: no environment '{validation.shown(slug)}'")
    if errors:
        raise InvalidInput(errors)
    return release, environment, bool(data.get("start_now", False)), data.get("break_glass") or None


def _break_glass_reason(user, break_glass, release, environment, request):
    """The reason of a break-glass override ("" without one); only an admin may ask for one."""
    if break_glass is None:
        return ""
    if not roles.has_role(user, roles.ADMIN, environment):
        deny("deployment.break_glass", user=user, request=request, target=release, environment=environment,
             reason="only an admin can request a break-glass override")
    return BreakGlass.validated(break_glass if isinstance(break_glass, dict) else {})["reason"]


def _check_request_rules(user, release, environment, start_now, break_glass, request):
    """The environment's rules for a new request: tier policy, ready, promotion order, freeze and window."""
    action = "deployment.request"
    policy_problems = _environment_policy_problems(release, environment)
    if policy_problems:  # what the tier forbids (e.g. `:latest` in production): a refused request, audited
        deny(action, user=user, request=request, target=release, environment=environment, error=InvalidInput,
             reason=policy_problems)
    if environment.status != "ready":
        deny(action, user=user, request=request, target=release, environment=environment, error=Conflict,
             reason=f"environment {environment.slug} is {environment.status}; deployments need a ready environment")
    if environment.promotion_from_id and not break_glass:
        source = environment.promotion_from
        if not Deployment.objects.filter(release=release, environment=source,
                                         state__in=[S.SUCCEEDED, S.ROLLED_BACK], kind=DEPLOY).exists():
            deny(action, user=user, request=request, target=release, environment=environment, error=Conflict,
                 reason=f"{environment.slug} only takes releases that succeeded in {source.slug} first; "
                        f"{release} has not")

        refusal = promotion_refusal(release, environment)  # go/no-go: verified upstream first
        if refusal:
            deny(action, user=user, request=request, target=release, environment=environment, error=Conflict, reason=refusal)
    probe = Deployment(environment=environment, break_glass=bool(break_glass))
    blocker = policies.start_blocker(probe)
    if blocker and not break_glass:
        frozen = env_rules.active_freeze(environment) is not None
        if frozen or start_now:
            deny(action, user=user, request=request, target=release, environment=environment, error=Conflict,
                 reason=blocker + ("" if frozen else "; request it without “start now” to have it wait for the window"))


def request_deployment(user, data, request=None):
    """A deployer asks to run a release in an environment. Returns the new deployment."""
    release, environment, start_now, break_glass = _parse_request(user, data)
    refusal = policies.request_refusal(user, environment)
    if refusal:
        deny("deployment.request", user=user, request=request, reason=refusal, target=release, environment=environment)
    reason = _break_glass_reason(user, break_glass, release, environment, request)
    _check_request_rules(user, release, environment, start_now, break_glass, request)
    with transaction.atomic():
        env = lock_environment(environment.pk)
        deployment = Deployment.objects.create(
            release=release, environment=env, service=release.service, kind=DEPLOY, requested_by=user,
            start_now=start_now, break_glass=bool(break_glass), break_glass_reason=reason, image=release.image,
            manifest_hash=manifest_hash(release.service, release, env),
            rendered_manifest=render_text(release.service, release, env),
        )
        record("deployment.request", actor=user, request=request, target=deployment, environment=env,
               detail={"release": str(release), "image": release.image, "start_now": start_now}
               | facts.request_facts(deployment)
               | ({"break_glass": True, "break_glass_reason": reason} if break_glass else {}))
        if policies.approvals_required(deployment) == 0:
            move(deployment, S.APPROVED, actor_name="gantry", detail={"reason": "no approval required"})
        else:
            notify(deployment, "approval_needed")
        advance(deployment)
    return deployment


def _environment_policy_problems(release, environment):
    """What the environment's tier forbids in this release's rendered manifests (e.g. `:latest` in production)."""
    try:
        documents = parse_documents(render_text(release.service, release, environment))
    except ManifestError as exc:
        return [f"manifest: {exc}"]
    return environment_policy_problems(documents, environment)


def decide(user, deployment_id, decision, *, comment="", checklist=None, seen_manifest_hash=None, request=None):
    """Approve or reject. The policy in deployments.policies decides who may; refusals are audited.

    `seen_manifest_hash`, when given, is the hash of the manifests the approver reviewed: if the
    manifests changed since, the decision is refused (409) so nobody approves what they did not see.
    """
    deployment = get_deployment(deployment_id)
    early = policies.decision_refusal(user, deployment, decision)
    if early:
        deny(f"deployment.{decision}", user=user, request=request, target=deployment,
             environment=deployment.environment, reason=early)
    schema = DeploymentApproval if decision == APPROVE else DeploymentRejection
    clean = schema.validated({"comment": comment, "checklist": checklist, "manifest_hash": seen_manifest_hash})
    comment = clean["comment"]
    if decision == APPROVE and deployment.environment.checklist:
        ticked = clean["checklist"] or []
        missing = [item for item in deployment.environment.checklist if item not in ticked]
        if missing:
            raise InvalidInput([f"checklist: tick '{item}' before approving" for item in missing])
    refusal, unseen = None, False
    with transaction.atomic():
        lock_environment(deployment.environment_id)
        deployment = locked_deployment(deployment_id)
        refusal = policies.decision_refusal(user, deployment, decision)
        if refusal is None:
            advance(deployment)  # re-bind to the current manifests first, so the approval is of what runs
            refusal = policies.decision_refusal(user, deployment, decision)
        if refusal is None and seen_manifest_hash and seen_manifest_hash != deployment.manifest_hash:
            unseen = True
        elif refusal is None:
            Approval.objects.create(deployment=deployment, user=user, decision=decision, comment=comment,
                                    image=deployment.image, manifest_hash=deployment.manifest_hash,
                                    checklist=list(deployment.environment.checklist) if decision == APPROVE else [])
            record(f"deployment.{decision}", actor=user, request=request, target=deployment,
                   environment=deployment.environment,
                   detail={"comment": comment, "image": deployment.image, "manifest_hash": deployment.manifest_hash,
                           "release": str(deployment.release)}
                   | facts.decision_facts(deployment, deployment.environment.checklist if decision == APPROVE else [],
                                           user=user)
                   | ({"break_glass": True} if deployment.break_glass else {}))
            if decision == REJECT:
                move(deployment, S.REJECTED, actor=user, request=request, detail={"comment": comment})
            else:
                advance(deployment, actor_name=user.get_username())
    if refusal:
        deny(f"deployment.{decision}", user=user, request=request, target=deployment,
             environment=deployment.environment, reason=refusal)
    if unseen:
        raise ManifestsChanged("the manifests changed after you loaded this page; review the new diff and decide again")
    return get_deployment(deployment_id)


def approve_deployment(user, deployment_id, comment="", checklist=None, seen_manifest_hash=None, request=None):
    return decide(user, deployment_id, APPROVE, comment=comment, checklist=checklist,
                  seen_manifest_hash=seen_manifest_hash, request=request)


def reject_deployment(user, deployment_id, comment="", request=None):
    return decide(user, deployment_id, REJECT, comment=comment, request=request)


def cancel_deployment(user, deployment_id, reason="", request=None):
    reason = Reason.validated({"reason": reason})["reason"]
    deployment = get_deployment(deployment_id)
    refusal = policies.cancel_refusal(user, deployment)
    if refusal:
        deny("deployment.cancel", user=user, request=request, target=deployment, environment=deployment.environment,
             reason=refusal)
    with transaction.atomic():
        lock_environment(deployment.environment_id)
        deployment = locked_deployment(deployment_id)
        if S.CANCELLED not in DEPLOYMENT_TRANSITIONS[deployment.state]:
            raise StateError(f"deployment #{deployment.pk} is {deployment.state.replace('_', ' ')}; "
                             "only a deployment that has not started can be cancelled")
        job = deployment.job
        move(deployment, S.CANCELLED, actor=user, request=request, detail={"reason": reason})
        if job is not None and job.state == "queued":
            cancel_job(job, user=user, request=request, check=False)
    start_next_queued(deployment.service_id, deployment.environment_id)
    return get_deployment(deployment_id)


def request_rollback(user, deployment_id, reason="", request=None):
    """Roll back the live deployment: a recorded deployment of its own that returns to the previous release."""
    reason = Reason.validated({"reason": reason})["reason"]
    deployment = get_deployment(deployment_id)
    env = deployment.environment
    refusal = policies.rollback_refusal(user, env)
    if refusal:
        deny("deployment.rollback", user=user, request=request, target=deployment, environment=env, reason=refusal)
    with transaction.atomic():
        env = lock_environment(env.pk)
        deployment = locked_deployment(deployment_id)
        target, blocker = policies.rollback_plan(deployment)
        if blocker:
            raise StateError(blocker)
        rollback = create_rollback(deployment, target, user=user, reason=reason, request=request)
    return get_deployment(rollback.pk)


def create_rollback(deployment, target, *, user=None, reason="", request=None, detail=None):
    """The rollback deployment of `deployment` to what `target` ran, started as far as its rules allow.

    The one path for a person's rollback and Gantry's automatic one (user None). Call it with the
    environment locked, after checking `deployment` is what runs."""
    env, release = deployment.environment, target.release
    rollback = Deployment.objects.create(
        release=release, environment=env, service=deployment.service, kind=ROLLBACK, requested_by=user,
        start_now=True, reason=reason, image=release.image, rollback_of=deployment,
        manifest_hash=target.manifest_hash, rendered_manifest=target.rendered_manifest,
        previous_color=deployment.color, color=target.color,
    )
    record("deployment.rollback_request", actor=user, actor_name=None if user else "gantry", request=request, target=rollback,
           environment=env, detail={"rolls_back": deployment.pk, "to_release": str(release), "reason": reason}
           | facts.request_facts(rollback) | (detail or {}))
    if policies.approvals_required(rollback) == 0:
        move(rollback, S.APPROVED, actor_name="gantry", detail={"reason": "a rollback returns to an approved release"})
    else:
        notify(rollback, "approval_needed")
    advance(rollback)  # a rollback re-applies exactly what ran before: no re-binding to today's manifests
    return rollback
