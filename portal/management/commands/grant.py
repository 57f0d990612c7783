from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.accounts.choices import ROLES
from portal.accounts.services import grant_role
from portal.audit.services import record
from portal.errors import GantryError


class Command(BaseCommand):
    help = "Give USER the ROLE (globally, or for one environment); creates the user if missing."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", help=f"one of {', '.join(ROLES)}")
        parser.add_argument("--environment", help="environment slug; without it the role is global")
        parser.add_argument("--password", help="set this password (new users otherwise get an unusable one)")

    def handle(self, username, role, environment=None, password=None, **options):
        User = get_user_model()
        existing = User.objects.filter(username=username).first()
        try:
            assignment = grant_role(None, username, role, environment=environment, password=password,
                                    operator="manage.py")
        except GantryError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if existing is not None and password:
            self._set_password(existing, password)
        scope = f"environment {environment}" if environment else "all environments"
        verb = "granted" if assignment.created else "already had"
        self.stdout.write(f"{username} {verb} {role} on {scope}" + (" (user created)" if existing is None else ""))

    def _set_password(self, user, password):
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("password: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            user.set_password(password)
            user.save(update_fields=["password"])
            record("user.password_set", actor_name="manage.py", target=user, detail={"password": "***"})
