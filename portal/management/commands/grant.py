from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from environments.models import Environment
from portal.accounts.choices import ROLES
from portal.accounts.models import RoleAssignment
from portal.audit.services import record


class Command(BaseCommand):
    help = "Give USER the ROLE (globally, or for one environment); creates the user if missing."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", help=f"one of {', '.join(ROLES)}")
        parser.add_argument("--environment", help="environment slug; without it the role is global")
        parser.add_argument("--password", help="set this password (new users otherwise get an unusable one)")
        parser.add_argument("--email", default="")

    def handle(self, username, role, environment=None, password=None, email="", **options):
        if role not in ROLES:
            raise CommandError(f"unknown role '{role}'; use one of {', '.join(ROLES)}")
        env = None
        if environment:
            env = Environment.objects.filter(slug=environment).first()
            if env is None:
                raise CommandError(f"no environment '{environment}'")
        User = get_user_model()
        if password:
            from django.contrib.auth.password_validation import validate_password
            from django.core.exceptions import ValidationError

            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise CommandError("password: " + " ".join(exc.messages))
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            created = user is None
            if created:
                user = User(username=username, email=email)
                if password:
                    user.set_password(password)
                else:
                    user.set_unusable_password()
                user.save()
                record("user.create", actor_name="manage.py", target=user, changes={"username": [None, username]})
            elif password:
                user.set_password(password)
                user.save(update_fields=["password"])
                record("user.password_set", actor_name="manage.py", target=user, detail={"password": "***"})
            assignment, new = RoleAssignment.objects.get_or_create(user=user, role=role, environment=env)
            if new:
                record("role.grant", actor_name="manage.py", target=user, environment=env,
                       changes={"role": [None, role], "scope": [None, env.slug if env else "global"]})
        scope = f"environment {env.slug}" if env else "all environments"
        verb = "granted" if new else "already had"
        self.stdout.write(f"{username} {verb} {role} on {scope}" + (" (user created)" if created else ""))
