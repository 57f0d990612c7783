import logging

from django.core.management.base import BaseCommand, CommandError

from portal.jobs.periodic import PERIODIC
from portal.jobs.scheduler import Entry, Scheduler, entries_from


class Command(BaseCommand):
    help = ("Run the periodic scheduler: sends portal.jobs.periodic.PERIODIC to the workers on time. Start "
            "one or more: only the holder of the lease (in PostgreSQL) acts, the others stand by.")

    def add_arguments(self, parser):
        parser.add_argument("--only", action="append", metavar="DOTTED=SECONDS[@QUEUE]",
                            help="send only this function every SECONDS (repeatable; for diagnosis and tests)")
        parser.add_argument("--tick", type=float, default=1.0, help="seconds between two rounds (default 1)")
        parser.add_argument("--lease", type=int, default=None,
                            help="lease seconds (default GANTRY_SCHEDULER_LEASE_SECONDS)")

    def handle(self, only=None, tick=1.0, lease=None, **options):
        logging.basicConfig(level=logging.INFO)
        entries = [self._parse(item) for item in only] if only else entries_from(PERIODIC)
        for entry in entries:
            self.stdout.write(f"scheduled {entry.dotted} on queue {entry.queue} ({entry.describe()})")
        self.stdout.flush()

        def out(line):
            self.stdout.write(line)
            self.stdout.flush()

        scheduler = Scheduler(entries, lease_seconds=lease, tick=tick, out=out)
        scheduler.install_signal_handlers()
        scheduler.run()

    @staticmethod
    def _parse(item):
        try:
            dotted, _, rest = item.partition("=")
            seconds, _, queue = rest.partition("@")
            return Entry(dotted, queue or "default", interval=int(seconds))
        except ValueError:
            raise CommandError(f"--only takes DOTTED=SECONDS[@QUEUE], not {item!r}")
