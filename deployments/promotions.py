"""Releases, deployment requests, approvals and the deployment state machine.

Every state change of a deployment happens here, inside a transaction that first locks the
environment row: all changes to one environment's deployments are serialized, so two approvers
clicking at once give exactly their two approvals and at most one job, and two deployments of
one service to one environment never run together.
"""
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from environments import policies as env_rules
from environments.models import Environment
from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, NotFound, deny
from portal.accounts import policies as roles
from portal import validation
from portal.validation import check_text

from . import policies
from .choices import APPROVE, DEPLOY, DEPLOYMENT_TRANSITIONS, REJECT, ROLLBACK, DeploymentState as S
from .models import Approval, Deployment, Release, Service
from .rendering import manifest_hash, render_text

MAX_COMMENT = 2000

# The release formats live in portal.validation (shared with the pages and the schemas).
IMAGE_REFERENCE, GIT_SHA = validation.IMAGE_REFERENCE, validation.GIT_SHA


class StateError(Conflict):
    pass


class ManifestsChanged(Conflict):
    """The approver reviewed other manifests than those an approval would now be bound to."""


# ---------------------------------------------------------------- releases

def check_image_reference(image, errors):
    return validation.check_image_reference(image, errors)


def register_release(user, data, request=None):
    if not roles.can_register_releases(user):
        deny("release.create", user=user, request=request, reason="registering releases needs the deployer role")
    errors = []
    service_name = validation.check_dns_label(data.get("service"), "service", errors)
    service = Service.objects.filter(name=service_name).first() if service_name else None
    if service_name and service is None:
        errors.append(f"service: no service named '{service_name}'")
    version = validation.check_version(data.get("version"), errors)
    image = validation.check_image_reference(data.get("image"), errors)
    git_sha = validation.check_git_sha(data.get("git_sha"), errors)
    notes = check_text(data.get("notes"), "notes", errors, required=False, max_length=10000) or ""
    if errors:
        raise InvalidInput(errors)
    existing = Release.objects.filter(service=service, version=version).first()
    if existing is not None:
        if existing.image != image:
            raise Conflict(f"{service.name} {version} is already registered with image {existing.image}; "
                           "a version is bound to one image: register a new version")
        raise Conflict(f"{service.name} {version} is already registered (release {existing.pk})")
    try:
        with transaction.atomic():
            release = Release.objects.create(service=service, version=version, image=image, git_sha=git_sha,
                                             notes=notes, created_by=user)
            record("release.create", actor=user, request=request, target=release,
                   changes={"service": [None, service.name], "version": [None, version], "image": [None, image],
                            "git_sha": [None, git_sha]})
    except IntegrityError:
        raise Conflict(f"{service.name} {version} was registered at the same moment; fetch it instead")
    return release


# ---------------------------------------------------------------- the state machine

def _lock_environment(environment_id):
    return Environment.objects.select_for_update().get(pk=environment_id)


def _move(deployment, new_state, *, actor=None, actor_name=None, request=None, detail=None, outcome="success"):
    old = deployment.state
    if new_state not in DEPLOYMENT_TRANSITIONS[old]:
        raise StateError(f"deployment #{deployment.pk} is {old.replace('_', ' ')} and cannot become "
                         f"{new_state.replace('_', ' ')}")
    deployment.state = new_state
    now = timezone.now()
    if new_state == S.RUNNING:
        deployment.started_at = now
    if new_state in S.FINISHED:
        deployment.finished_at = deployment.finished_at or now
    deployment.save()
    record(f"deployment.{new_state}", actor=actor, actor_name=actor_name, request=request, target=deployment,
           environment=deployment.environment, outcome=outcome, changes={"state": [old, new_state]},
           detail=(detail or {}) | ({"break_glass": True} if deployment.break_glass else {}))
    from .notifications import notify

    notify(deployment, new_state)
    return deployment


def current_manifest_hash(deployment):
    """The manifests an approval given now is bound to: an open request is re-rendered from today's
    service template and environment; a started or finished deployment, and any rollback, keeps
    what it recorded."""
    if deployment.kind == DEPLOY and deployment.state in (S.PENDING_APPROVAL, S.APPROVED, S.QUEUED):
        return manifest_hash(deployment.service, deployment.release, deployment.environment)
    return deployment.manifest_hash


def advance(deployment, *, actor_name="gantry"):
    """Move a deployment as far as its approvals, window and freeze allow. Call with the environment locked."""
    current = current_manifest_hash(deployment)
    if current != deployment.manifest_hash and deployment.state in (S.PENDING_APPROVAL, S.APPROVED):
        old = deployment.manifest_hash
        deployment.manifest_hash = current
        deployment.rendered_manifest = render_text(deployment.service, deployment.release, deployment.environment)
        deployment.save(update_fields=["manifest_hash", "rendered_manifest", "updated_at"])
        record("deployment.manifests_changed", actor_name=actor_name, target=deployment, environment=deployment.environment,
               changes={"manifest_hash": [old, current]}, detail={"reason": "earlier approvals no longer count"})
    approved_enough = len(policies.valid_approvals(deployment)) >= policies.approvals_required(deployment)
    if deployment.state == S.APPROVED and not approved_enough:
        _move(deployment, S.PENDING_APPROVAL, actor_name=actor_name,
              detail={"reason": "what was approved changed before the deployment started"})
    if deployment.state == S.PENDING_APPROVAL and approved_enough:
        _move(deployment, S.APPROVED, actor_name=actor_name)
    if deployment.state == S.APPROVED and policies.start_blocker(deployment) is None:
        _move(deployment, S.QUEUED, actor_name=actor_name)
    if deployment.state == S.QUEUED and deployment.job_id is None:
        _start_job_if_free(deployment)
    return deployment


def _start_job_if_free(deployment):
    """Give a queued deployment its job, unless another of the same service and environment is ahead of it."""
    ahead = (Deployment.objects.filter(service_id=deployment.service_id, environment_id=deployment.environment_id)
             .filter(state__in=[S.QUEUED, S.RUNNING]).exclude(pk=deployment.pk))
    if ahead.filter(state=S.RUNNING).exists() or ahead.filter(job__isnull=False).exclude(job__state="failed").exists():
        return None
    if ahead.filter(requested_at__lt=deployment.requested_at).exists():
        return None
    from portal.jobs.services import enqueue_job

    job = enqueue_job("deployment.apply", target=deployment, environment=deployment.environment,
                      requested_by=deployment.requested_by, params={"deployment": deployment.pk})
    deployment.job = job
    deployment.save(update_fields=["job", "updated_at"])
    return job


def start_next_queued(service_id, environment_id):
    """After a deployment ends, the oldest one waiting for the same service and environment gets its job."""
    with transaction.atomic():
        _lock_environment(environment_id)
        waiting = (Deployment.objects.select_related("release__service", "service", "environment")
                   .filter(service_id=service_id, environment_id=environment_id, state=S.QUEUED)
                   .filter(Q(job__isnull=True) | Q(job__state="failed"))  # never ran: its enqueue failed
                   .order_by("requested_at", "id").first())
        if waiting is not None:
            _start_job_if_free(waiting)


def fail_abandoned_deployments(minutes=30):
    """Periodic: a deployment whose deploy job failed (its worker died) and was not retried within
    `minutes` fails, so the deployments queued behind it can go on."""
    from datetime import timedelta

    cutoff = timezone.now() - timedelta(minutes=minutes)
    stuck = Deployment.objects.filter(state=S.RUNNING, job__state="failed", job__finished_at__lt=cutoff)
    count = 0
    for pk, error in stuck.values_list("pk", "job__error"):
        finish_deployment(pk, False, error=f"the deploy job failed and was not retried within {minutes} minutes: {error}")
        count += 1
    return count


def start_due_deployments():
    """Periodic: start approved deployments whose window has opened or whose freeze has ended, and
    give a job to queued deployments left without one (a crash between two steps, a failed enqueue)."""
    orphans = (Deployment.objects.filter(state=S.QUEUED).filter(Q(job__isnull=True) | Q(job__state="failed"))
               .values_list("service_id", "environment_id").distinct())
    for service_id, environment_id in orphans:
        start_next_queued(service_id, environment_id)
    started = 0
    for pk, env_id in Deployment.objects.filter(state=S.APPROVED).values_list("pk", "environment_id"):
        with transaction.atomic():
            _lock_environment(env_id)
            deployment = _locked(pk)
            if deployment.state == S.APPROVED:
                advance(deployment, actor_name="gantry-scheduler")
                started += deployment.state == S.QUEUED
    return started


def _locked(pk):
    return (Deployment.objects.select_for_update(of=("self",))
            .select_related("release__service", "service", "environment", "requested_by").get(pk=pk))


def get_deployment(pk):
    deployment = (Deployment.objects.select_related("release__service", "service", "environment", "requested_by", "job")
                  .filter(pk=pk).first())
    if deployment is None:
        raise NotFound(f"no deployment #{pk}")
    return deployment


# ---------------------------------------------------------------- requests

def request_deployment(user, data, request=None):
    """A deployer asks to run a release in an environment. Returns the new deployment."""
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
    start_now = bool(data.get("start_now", False))
    break_glass = data.get("break_glass") or None
    if errors:
        raise InvalidInput(errors)
    action = "deployment.request"
    refusal = policies.request_refusal(user, environment)
    if refusal:
        deny(action, user=user, request=request, reason=refusal, target=release, environment=environment)
    reason = ""
    if break_glass is not None:
        if not roles.has_role(user, roles.ADMIN, environment):
            deny("deployment.break_glass", user=user, request=request, target=release, environment=environment,
                 reason="only an admin can request a break-glass override")
        reason = break_glass.get("reason") if isinstance(break_glass, dict) else None
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("break_glass.reason: required (say why the rules must be overridden)")
        if len(reason) > 500:
            raise InvalidInput("break_glass.reason: at most 500 characters")
        reason = reason.strip()
    policy_problems = _environment_policy_problems(release, environment)
    if policy_problems:
        raise InvalidInput(policy_problems)
    if environment.status != "ready":
        raise Conflict(f"environment {environment.slug} is {environment.status}; deployments need a ready environment")
    if environment.promotion_from_id and not break_glass:
        source = environment.promotion_from
        if not Deployment.objects.filter(release=release, environment=source,
                                         state__in=[S.SUCCEEDED, S.ROLLED_BACK], kind=DEPLOY).exists():
            deny(action, user=user, request=request, target=release, environment=environment, error=Conflict,
                 reason=f"{environment.slug} only takes releases that succeeded in {source.slug} first; "
                        f"{release} has not")
    probe = Deployment(environment=environment, break_glass=bool(break_glass))
    blocker = policies.start_blocker(probe)
    if blocker and not break_glass:
        frozen = env_rules.active_freeze(environment) is not None
        if frozen or start_now:
            deny(action, user=user, request=request, target=release, environment=environment, error=Conflict,
                 reason=blocker + ("" if frozen else "; ask again without start_now to wait for the window"))
    with transaction.atomic():
        env = _lock_environment(environment.pk)
        deployment = Deployment.objects.create(
            release=release, environment=env, service=release.service, kind=DEPLOY, requested_by=user,
            start_now=start_now, break_glass=bool(break_glass), break_glass_reason=reason, image=release.image,
            manifest_hash=manifest_hash(release.service, release, env),
            rendered_manifest=render_text(release.service, release, env),
        )
        record("deployment.request", actor=user, request=request, target=deployment, environment=env,
               detail={"release": str(release), "image": release.image, "start_now": start_now}
               | ({"break_glass": True, "break_glass_reason": reason} if break_glass else {}))
        if policies.approvals_required(deployment) == 0:
            _move(deployment, S.APPROVED, actor_name="gantry", detail={"reason": "no approval required"})
        else:
            from .notifications import notify

            notify(deployment, "approval_needed")
        advance(deployment)
    return deployment


def _environment_policy_problems(release, environment):
    """What the environment's tier forbids in this release's rendered manifests (e.g. `:latest` in production)."""
    from .manifests import ManifestError, environment_policy_problems, parse_documents

    try:
        documents = parse_documents(render_text(release.service, release, environment))
    except ManifestError as exc:
        return [f"manifest: {exc}"]
    return environment_policy_problems(documents, environment)


def _clean_comment(comment, required):
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise InvalidInput("comment: must be text")
    comment = comment.strip()
    if required and not comment:
        raise InvalidInput("comment: required to reject (say what must change)")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"comment: at most {MAX_COMMENT} characters (got {len(comment)})")
    return comment


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
    comment = _clean_comment(comment, required=decision == REJECT)
    if decision == APPROVE and deployment.environment.checklist:
        ticked = [item for item in (checklist or []) if isinstance(item, str)]
        missing = [item for item in deployment.environment.checklist if item not in ticked]
        if missing:
            raise InvalidInput([f"checklist: tick '{item}' before approving" for item in missing])
    refusal, unseen = None, False
    with transaction.atomic():
        _lock_environment(deployment.environment_id)
        deployment = _locked(deployment_id)
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
                   | ({"break_glass": True} if deployment.break_glass else {}))
            if decision == REJECT:
                _move(deployment, S.REJECTED, actor=user, request=request, detail={"comment": comment})
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
    reason = _clean_comment(reason, required=False)
    deployment = get_deployment(deployment_id)
    refusal = policies.cancel_refusal(user, deployment)
    if refusal:
        deny("deployment.cancel", user=user, request=request, target=deployment, environment=deployment.environment,
             reason=refusal)
    with transaction.atomic():
        _lock_environment(deployment.environment_id)
        deployment = _locked(deployment_id)
        if S.CANCELLED not in DEPLOYMENT_TRANSITIONS[deployment.state]:
            raise StateError(f"deployment #{deployment.pk} is {deployment.state.replace('_', ' ')}; "
                             "only a deployment that has not started can be cancelled")
        job = deployment.job
        _move(deployment, S.CANCELLED, actor=user, request=request, detail={"reason": reason})
        if job is not None and job.state == "queued":
            from portal.jobs.services import cancel_job

            cancel_job(job, user=user, request=request, check=False)
    start_next_queued(deployment.service_id, deployment.environment_id)
    return get_deployment(deployment_id)


# ---------------------------------------------------------------- what the deploy job reports

def mark_running(deployment_id):
    """The deploy job starts: queued -> running. Refuses when what was approved changed."""
    with transaction.atomic():
        _lock_environment(Deployment.objects.values_list("environment_id", flat=True).get(pk=deployment_id))
        deployment = _locked(deployment_id)
        if deployment.kind == DEPLOY and manifest_hash(deployment.service, deployment.release,
                                                       deployment.environment) != deployment.manifest_hash:
            raise StateError("the service's manifests changed after approval; request the deployment again")
        if deployment.kind == ROLLBACK and deployment.rollback_of_id:
            live = live_deployment(deployment.service_id, deployment.environment_id)
            if live is None or live.pk != deployment.rollback_of_id:
                raise StateError(f"deployment #{deployment.rollback_of_id} is no longer what runs "
                                 f"(#{live.pk if live else '-'} is); this rollback would undo a newer release")
        if deployment.state == S.RUNNING:
            return deployment  # a retry after a crash: carry on (apply is idempotent)
        return _move(deployment, S.RUNNING, actor_name="gantry-worker")


def finish_deployment(deployment_id, succeeded, *, error="", color="", previous_color=""):
    with transaction.atomic():
        _lock_environment(Deployment.objects.values_list("environment_id", flat=True).get(pk=deployment_id))
        deployment = _locked(deployment_id)
        if deployment.state != S.RUNNING:
            return deployment
        deployment.error = error[:5000]
        if color:
            deployment.color, deployment.previous_color = color, previous_color
        _move(deployment, S.SUCCEEDED if succeeded else S.FAILED, actor_name="gantry-worker",
              outcome="success" if succeeded else "failure", detail={"error": error[:500]} if error else None)
        if succeeded and deployment.kind == ROLLBACK and deployment.rollback_of_id:
            rolled = _locked(deployment.rollback_of_id)
            if rolled.state == S.SUCCEEDED:
                _move(rolled, S.ROLLED_BACK, actor_name="gantry-worker", detail={"by": deployment.pk})
    start_next_queued(deployment.service_id, deployment.environment_id)
    return deployment


def fail_queued_deployment(deployment_id, error):
    """A deploy job that could not even start (e.g. manifests changed): the deployment fails visibly."""
    with transaction.atomic():
        _lock_environment(Deployment.objects.values_list("environment_id", flat=True).get(pk=deployment_id))
        deployment = _locked(deployment_id)
        if deployment.state == S.QUEUED:
            _move(deployment, S.RUNNING, actor_name="gantry-worker")
        if deployment.state == S.RUNNING:
            deployment.error = error[:5000]
            _move(deployment, S.FAILED, actor_name="gantry-worker", outcome="failure", detail={"error": error[:500]})
    start_next_queued(deployment.service_id, deployment.environment_id)


# ---------------------------------------------------------------- rollback

def live_deployment(service_id, environment_id):
    """The deployment whose release runs now: the latest that succeeded."""
    return (Deployment.objects.filter(service_id=service_id, environment_id=environment_id, state=S.SUCCEEDED)
            .order_by("-finished_at", "-id").first())


def rollback_target(deployment):
    """The last successful deployment before `deployment` of another release (what a rollback returns to)."""
    return (Deployment.objects.select_related("release")
            .filter(service_id=deployment.service_id, environment_id=deployment.environment_id,
                    state__in=[S.SUCCEEDED, S.ROLLED_BACK], finished_at__lt=deployment.finished_at)
            .exclude(release_id=deployment.release_id).order_by("-finished_at", "-id").first())


def live_and_rollback_targets(environment_id, depth=20, with_manifests=False):
    """{service_id: (live deployment, rollback target or None)} for a whole environment in one query.

    The same rules as live_deployment and rollback_target, over each service's `depth` most recent
    successful deployments (a rollback further back than that is not offered here).
    """
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    deferred = ("release__notes", "service__manifest") + (() if with_manifests else ("rendered_manifest",))
    recent = (Deployment.objects.select_related("release", "service", "requested_by")
              .defer(*deferred)
              .filter(environment_id=environment_id, state__in=[S.SUCCEEDED, S.ROLLED_BACK])
              .annotate(rank=Window(RowNumber(), partition_by=[F("service_id")],
                                    order_by=[F("finished_at").desc(), F("id").desc()]))
              .filter(rank__lte=depth).order_by("service_id", "rank"))
    history = {}
    for deployment in recent:
        history.setdefault(deployment.service_id, []).append(deployment)
    result = {}
    for service_id, rows in history.items():
        live = next((d for d in rows if d.state == S.SUCCEEDED), None)
        if live is None:
            continue
        target = next((d for d in rows if d.finished_at < live.finished_at and d.release_id != live.release_id), None)
        result[service_id] = (live, target)
    return result


def request_rollback(user, deployment_id, reason="", request=None):
    """Roll back the live deployment: a recorded deployment of its own that returns to the previous release."""
    reason = _clean_comment(reason, required=False)
    deployment = get_deployment(deployment_id)
    env = deployment.environment
    refusal = policies.request_refusal(user, env)
    if refusal:
        deny("deployment.rollback", user=user, request=request, target=deployment, environment=env,
             reason=refusal.replace("request deployments", "roll back"))
    with transaction.atomic():
        env = _lock_environment(env.pk)
        deployment = _locked(deployment_id)
        live = live_deployment(deployment.service_id, env.pk)
        if deployment.state != S.SUCCEEDED or live is None or live.pk != deployment.pk:
            raise StateError(f"deployment #{deployment.pk} is not what runs now in {env.slug}"
                             + (f" (#{live.pk} is)" if live else "") + "; roll back the live deployment")
        if Deployment.objects.filter(service_id=deployment.service_id, environment_id=env.pk,
                                     state__in=[S.APPROVED, S.QUEUED, S.RUNNING]).exists():
            raise StateError(f"a deployment or rollback of {deployment.service.name} in {env.slug} is already "
                             "approved or under way; wait for it, or cancel it, before rolling back")
        target = rollback_target(deployment)
        if target is None:
            raise StateError(f"there is no earlier successful release of {deployment.service.name} in {env.slug} "
                             "to roll back to")
        release = target.release
        rollback = Deployment.objects.create(
            release=release, environment=env, service=deployment.service, kind=ROLLBACK, requested_by=user,
            start_now=True, reason=reason, image=release.image, rollback_of=deployment,
            manifest_hash=target.manifest_hash, rendered_manifest=target.rendered_manifest,
            previous_color=deployment.color, color=target.color,
        )
        record("deployment.rollback_request", actor=user, request=request, target=rollback, environment=env,
               detail={"rolls_back": deployment.pk, "to_release": str(release), "reason": reason})
        if policies.approvals_required(rollback) == 0:
            _move(rollback, S.APPROVED, actor_name="gantry", detail={"reason": "a rollback returns to an approved release"})
        else:
            from .notifications import notify

            notify(rollback, "approval_needed")
        advance(rollback)  # a rollback re-applies exactly what ran before: no re-binding to today's manifests
    return get_deployment(rollback.pk)
