import secrets
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from deployments import actions, catalog
from deployments.models import Release, Service
from deployments.releases import register_release
from environments import clusters, lifecycle
from environments.backups.demo import seed_backups
from environments.models import Cluster, Environment
from portal.accounts.services import grant_role
from portal.audit.services import record
from portal.demo_data import ENVIRONMENTS, RULES, SERVICES, USERS


class Command(BaseCommand):
    help = "Create (or refresh) the demo's users, sandbox cluster, environments and services. Prints the logins."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:8001")
        parser.add_argument("--password", help="use this password for every demo user (default: a new random one)")
        parser.add_argument("--backup-dsn", help="a PostgreSQL database the demo's production backup target dumps")
        parser.add_argument("--backup-dir", help="the local directory the demo's backups go to")

    def handle(self, sandbox_url, password=None, backup_dsn=None, backup_dir=None, **options):
        password = password or secrets.token_urlsafe(9)
        User = get_user_model()
        users = {}
        with transaction.atomic():
            for username, roles, _ in USERS:
                user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
                user.set_password(password)
                user.save()
                if created:
                    record("user.create", actor_name="seed_demo", target=user, changes={"username": [None, username]})
                for role in roles:
                    grant_role(None, username, role, operator="seed_demo")
                users[username] = user
        admin = users["admin"]

        cluster = Cluster.objects.filter(name="sandbox").first()
        if cluster is None:
            cluster = clusters.create_cluster(admin, {"name": "sandbox", "server": sandbox_url}, is_sandbox=True)
        elif cluster.server != sandbox_url:
            clusters.update_cluster(admin, cluster, {"server": sandbox_url})

        for spec in ENVIRONMENTS:
            env = Environment.objects.filter(slug=spec["slug"]).first()
            if env is None:
                owner = users["dana"] if spec["tier"] in ("development", "preview") else admin
                env = lifecycle.create_environment(owner, {**spec, "cluster": "sandbox"})
            elif env.status == "failed":
                lifecycle.reprovision_environment(admin, env)
            if spec["slug"] in RULES:
                lifecycle.update_environment(admin, env, RULES[spec["slug"]])

        for spec in SERVICES:
            if not Service.objects.filter(name=spec["name"]).exists():
                catalog.create_service(admin, spec)

        self.seed_history(users)
        if backup_dsn:
            try:
                self.stdout.write(seed_backups(admin, backup_dsn, backup_dir))
            except Exception as exc:  # the rest of the demo is worth having without it
                self.stdout.write(f"Backups: the demo backup could not be seeded ({exc.__class__.__name__}: {exc})")

        self.stdout.write("")
        self.stdout.write("Demo users (all with the same password):")
        for username, _roles, description in USERS:
            self.stdout.write(f"  {username:<8} {description}")
        self.stdout.write(f"Password: {password}")

    def wait_until_ready(self, slugs, timeout=60):
        """The worker provisions namespaces in the background; deployments need ready environments."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = set(Environment.objects.filter(slug__in=slugs).values_list("status", flat=True))
            if statuses == {"ready"}:
                return True
            if "failed" in statuses:
                return False
            time.sleep(0.3)
        return False

    def seed_history(self, users):
        """Releases and deployments so every page has something to show, and production has a
        live blue-green release (1.0.0) with the next one (1.1.0) waiting for two approvals."""
        if Release.objects.exists():
            return
        if not self.wait_until_ready(["dev", "production"]):
            self.stderr.write("the environments are not ready yet (is a worker running?); skipping demo history")
            return
        dana, rita, omar = users["dana"], users["rita"], users["omar"]
        digest = "@sha256:" + "4f" * 32
        releases = {}
        for service, versions in (("web", ["1.0.0", "1.1.0"]), ("api", ["2.3.0"]), ("worker", ["2.3.0"])):
            for version in versions:
                releases[(service, version)] = register_release(dana, {
                    "service": service, "version": version,
                    "image": f"registry.example.com/shop/{service}:{version}{digest}",
                    "git_sha": f"{abs(hash((service, version))) % 16**7:07x}",
                    "notes": f"{service} {version}: see CHANGELOG.md"})
        for key in (("web", "1.0.0"), ("api", "2.3.0"), ("worker", "2.3.0"), ("web", "1.1.0")):
            actions.request_deployment(dana, {"release": releases[key].pk, "environment": "dev"})
        first = actions.request_deployment(dana, {"release": releases[("web", "1.0.0")].pk, "environment": "production"})
        checklist = list(first.environment.checklist)
        for approver in (rita, omar):
            actions.approve_deployment(approver, first.pk, comment="Checked the diff and the runbook.",
                                          checklist=checklist)
        actions.request_deployment(dana, {"release": releases[("web", "1.1.0")].pk, "environment": "production"})
