"""Roles and API tokens: every change goes through these functions (pages, commands).

Each change and its audit event are written in one transaction (DESIGN rule 3). Refused
attempts are audited with outcome `denied` through `portal.errors.deny`. Token values and
passwords never reach an audit event.
"""
import zoneinfo

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.audit.services import record
from portal.errors import Conflict, InvalidInput, NotFound, deny, deny_if

from . import policies
from .choices import ADMIN
from .models import ApiToken, Profile, RoleAssignment, environment_model
from .schemas import RoleGrant, TokenCreate


def _scope(environment):
    return environment.slug if environment is not None else "global"


def _resolve_environment(environment, errors):
    """An Environment, a slug, or None/"" (global) -> Environment or None."""
    if environment in (None, ""):
        return None
    Environment = environment_model()  # a model class, named as one
    if isinstance(environment, Environment):
        return environment
    found = Environment.objects.filter(slug=str(environment)).first()
    if found is None:
        errors.append(f"environment: no environment '{environment}'; leave it empty for a global role")
    return found


def grant_role(actor, username, role, environment=None, request=None, create_user=True, password=None,
               operator=None):
    """Give `username` the `role` (globally, or for one environment). Idempotent.

    Creates the user when missing and `create_user` is true (with `password`, else an unusable
    password, so they sign in some other way or get one set later). Returns the RoleAssignment.
    `operator` names who acts from the host's console (`manage.py grant`): no user, no role check.
    """
    if operator is None:
        deny_if(policies.admin_refusal(actor, "grant roles"), "role.grant", user=actor, request=request,
                environment=environment or None)
    errors = []
    try:
        username = RoleGrant.validated({"username": username, "role": role})["username"]
    except InvalidInput as exc:
        errors += exc.messages
    env = _resolve_environment(environment, errors)
    if errors:
        raise InvalidInput(errors)
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None and not create_user:
        raise InvalidInput(f"username: no user '{username}'")
    if user is None:
        try:
            User.username_validator(username)
        except ValidationError as exc:
            raise InvalidInput([f"username: {m}" for m in exc.messages]) from None
        if password:
            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise InvalidInput([f"password: {m}" for m in exc.messages]) from None
    try:
        with transaction.atomic():
            if user is None:
                user = User(username=username)
                if password:
                    user.set_password(password)
                else:
                    user.set_unusable_password()
                user.save()
                record("user.create", actor=actor, actor_name=operator, request=request, target=user,
                       changes={"username": [None, username]})
            assignment, created = RoleAssignment.objects.get_or_create(user=user, role=role, environment=env)
            if created:
                record("role.grant", actor=actor, actor_name=operator, request=request, target=user, environment=env,
                       changes={"role": [None, role], "scope": [None, _scope(env)]})
    except IntegrityError:
        raise Conflict(f"{username} was given this role at the same moment; reload the page") from None
    policies.forget_roles(user)
    if getattr(actor, "pk", None) == user.pk:
        policies.forget_roles(actor)
    assignment.created = created
    return assignment


def revoke_role(actor, assignment, request=None):
    """Take a role away. The last global admin cannot be revoked (nobody could grant roles again)."""
    if not isinstance(assignment, RoleAssignment):
        assignment = RoleAssignment.objects.select_related("user", "environment").filter(pk=assignment).first()
    deny_if(policies.admin_refusal(actor, "revoke roles"), "role.revoke", user=actor, request=request,
            target=assignment.user if assignment else None,
            environment=assignment.environment if assignment else None)
    if assignment is None:
        raise NotFound("no such role assignment; it may have been revoked already")
    with transaction.atomic():
        locked = RoleAssignment.objects.select_for_update().filter(pk=assignment.pk).first()
        if locked is None:
            raise NotFound("no such role assignment; it may have been revoked already")
        if locked.role == ADMIN and locked.environment_id is None:
            # Lock every global admin row, so two admins revoking each other cannot both succeed.
            admins = RoleAssignment.objects.select_for_update().filter(role=ADMIN, environment__isnull=True)
            if len(admins.values_list("pk", flat=True)) <= 1:
                raise Conflict("this is the last global admin; grant admin to someone else first")
        user, env = assignment.user, assignment.environment
        record("role.revoke", actor=actor, request=request, target=user, environment=env,
               changes={"role": [locked.role, None], "scope": [_scope(env), None]})
        locked.delete()
    policies.forget_roles(user)
    if getattr(actor, "pk", None) == user.pk:
        policies.forget_roles(actor)


def create_api_token(user, name="", request=None, operator=None):
    """Create a bearer token for `user`; return the clear token (shown once, never stored).
    `operator` names who acts from the host's console (`manage.py create_api_token`)."""
    if user is None or not user.is_authenticated or not user.is_active:
        raise InvalidInput("an API token needs an active, signed-in user")
    name = TokenCreate.validated({"name": name}).get("name") or ""
    raw, prefix, digest = ApiToken.generate()
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, prefix=prefix, digest=digest)
        # No part of the token in the event: the id and the label identify it.
        record("token.create", actor=None if operator else user, actor_name=operator, request=request, target=user,
               detail={"id": token.pk, "name": name})
    return raw


def revoke_api_token(user, token, request=None):
    """Revoke one of `user`'s tokens (an admin may revoke anyone's). `token`: ApiToken or id."""
    if not isinstance(token, ApiToken):
        token = ApiToken.objects.select_related("user").filter(pk=token).first()
        if token is None:
            raise NotFound("no such API token")
    if token.user_id != getattr(user, "pk", None) and not policies.is_admin(user):
        deny("token.revoke", user=user, request=request, target=token.user,
             reason="you can revoke only your own API tokens")
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            raise Conflict("this token is already revoked")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        record("token.revoke", actor=user, request=request, target=token.user,
               detail={"id": locked.pk, "name": locked.name})
    return locked


def set_time_zone(user, name, request=None):
    """The zone this user's pages show times in ("" = the browser's, else UTC). Audited."""

    name = (name or "").strip()
    if name:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"timezone: '{name[:64]}' is not a time zone name such as Europe/Berlin or UTC") from None
    with transaction.atomic():
        profile, _ = Profile.objects.get_or_create(user=user)
        old, profile.timezone = profile.timezone, name
        profile.save(update_fields=["timezone"])
        record("profile.timezone", actor=user, request=request, target=user,
               detail={"from": old or "browser", "to": name or "browser"})
    return profile
