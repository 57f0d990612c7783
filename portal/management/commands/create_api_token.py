from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.accounts.models import ApiToken
from portal.audit.services import record


class Command(BaseCommand):
    help = "Print a new API token for USER as the last line of stdout (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label for the token, e.g. 'ci-pipeline'")

    def handle(self, username, name="", **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user '{username}'; create one with: manage.py grant {username} ROLE")
        raw, prefix, digest = ApiToken.generate()
        with transaction.atomic():
            token = ApiToken.objects.create(user=user, name=name[:100], prefix=prefix, digest=digest)
            record("token.create", actor_name="manage.py", target=user, detail={"token_prefix": prefix, "name": name})
        self.stderr.write(f"token {token.prefix}… for {username}; store it now, it cannot be shown again")
        self.stdout.write(raw)
