"""``manage.py sandbox_cluster --port 8001 [--token T]``: serve the sandbox Kubernetes API.

The demo points its "sandbox" cluster at this; it runs until Ctrl-C or SIGTERM.
"""

from django.core.management.base import BaseCommand

from portal.sandbox import main


class Command(BaseCommand):
    help = "Serve the sandbox cluster (a Kubernetes API test double) on 127.0.0.1 until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (0 picks a free one; default 8001)")
        parser.add_argument("--token", default=None, help="require this bearer token on API requests")
        parser.add_argument("--rollout-delay", type=float, default=0.2, help="seconds a rollout takes to become ready")

    def handle(self, *args, port, token, rollout_delay, **options):
        def announce(line):
            self.stdout.write(line)
            self.stdout.flush()

        main(port=port, token=token, rollout_delay=rollout_delay, announce=announce)
