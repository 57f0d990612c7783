"""The demo's verification story: a release in staging fails its verification and rolls back by itself.

``make demo`` runs it in the background once the web server is up. web 1.0.0 goes to staging and
passes a short verification window; then 1.1.0 goes to the idle colour (green) while the sandbox
serves errors from it: with Prometheus the error-rate rule fails after its duration, without
Prometheus the health path fails three times in a row. Gantry then flips traffic back to blue.
"""
import json
import time
import urllib.request

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from deployments import actions
from deployments.models import Deployment, Release
from deployments.monitoring.config import update_verification
from deployments.monitoring.models import Verification, default_rules
from environments.models import Environment
from portal.outbound import open_configured


class Command(BaseCommand):
    help = "Demo: a staging release that fails verification and is rolled back automatically (needs a worker and the scheduler)."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:8001")
        parser.add_argument("--prometheus-url", default="")
        parser.add_argument("--timeout", type=float, default=180)

    def handle(self, sandbox_url, prometheus_url, timeout, **options):
        self.deadline = time.monotonic() + timeout
        users = get_user_model().objects
        admin, dana, rita = users.get(username="admin"), users.get(username="dana"), users.get(username="rita")
        staging = self.wait_for(lambda: Environment.objects.filter(slug="staging", status="ready").first(), "staging to be ready")
        rules = default_rules()
        for rule in rules:
            rule["for_seconds"] = 15 if rule["name"] == "error rate" else rule["for_seconds"]
        update_verification(admin, staging, {"window_seconds": 30, "probe_interval_seconds": 5, "failure_threshold": 3,
                                             "auto_rollback": True, "prometheus_url": prometheus_url or None, "rules": rules})
        self.say(f"staging verifies each deployment for 30 s; metric rules {'on: ' + prometheus_url if prometheus_url else 'off (no Prometheus)'}")
        good = self.deploy(dana, rita, staging, "1.0.0")
        self.wait_for(lambda: Verification.objects.filter(deployment=good, state="passed").exists(), "1.0.0 to pass verification")
        self.say("web 1.0.0 passed verification in staging")
        if prometheus_url:
            self.sandbox(sandbox_url, "traffic", {"deployment": "web-green", "error_rate": 0.3})
        bad = self.deploy(dana, rita, staging, "1.1.0")
        if not prometheus_url:
            self.sandbox(sandbox_url, "faults", {"deployment": "web-green", "fault": "fail_probe"})
        self.say("web 1.1.0 is live in staging and serving errors; Gantry should roll it back by itself")
        rollback = self.wait_for(lambda: Deployment.objects.filter(rollback_of=bad, state="succeeded").first(), "the automatic rollback")
        self.say(f"rolled back automatically: deployment #{rollback.pk} put web 1.0.0 back "
                 f"({Verification.objects.get(deployment=bad).reason})")

    def deploy(self, requester, approver, env, version):
        release = Release.objects.get(service__name="web", version=version)
        deployment = actions.request_deployment(requester, {"release": release.pk, "environment": env.slug})
        if deployment.state == "pending_approval":
            actions.approve_deployment(approver, deployment.pk, comment="demo: verification story",
                                          checklist=list(env.checklist))
        return self.wait_for(lambda: Deployment.objects.filter(pk=deployment.pk, state="succeeded").first(),
                             f"web {version} to be deployed in staging", failed=lambda: Deployment.objects.get(pk=deployment.pk).state == "failed")

    def sandbox(self, url, control, body):
        request = urllib.request.Request(f"{url.rstrip('/')}/sandbox/{control}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with open_configured(request, 5) as response:  # the demo's own sandbox
            return response.status

    def wait_for(self, probe, what, failed=None):
        while time.monotonic() < self.deadline:
            found = probe()
            if found:
                return found
            if failed is not None and failed():
                raise CommandError(f"the demo stopped: {what} failed")
            time.sleep(0.5)
        raise CommandError(f"the demo gave up waiting for {what}")

    def say(self, line):
        self.stdout.write(f"[verification demo] {line}")
        self.stdout.flush()
