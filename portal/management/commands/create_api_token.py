from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.accounts.services import create_api_token
from portal.errors import GantryError


class Command(BaseCommand):
    help = "Print a new API token for USER as the last line of stdout (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label for the token, e.g. 'ci-pipeline'")

    def handle(self, username, name="", **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user '{username}'; create one with: manage.py grant {username} ROLE")
        try:
            raw = create_api_token(user, name=name, operator="manage.py")
        except GantryError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stderr.write(f"token {raw[:12]}… for {username}; store it now, it cannot be shown again")
        self.stdout.write(raw)
