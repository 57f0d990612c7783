import logging
from importlib import import_module

import django_rq
from django.core.management.base import BaseCommand
from rq.cron import CronScheduler

from portal.jobs import periodic


class Command(BaseCommand):
    help = "Run the periodic scheduler (RQ's CronScheduler): enqueues every app's periodic work on time."

    def handle(self, **options):
        logging.basicConfig(level=logging.INFO)
        scheduler = CronScheduler(connection=django_rq.get_connection("default"), name="gantry-scheduler")
        for dotted, queue, timing in periodic.collect():
            module, _, name = dotted.rpartition(".")
            scheduler.register(getattr(import_module(module), name), queue_name=queue, **timing)
            self.stdout.write(f"scheduled {dotted} on queue {queue} ({timing})")
        self.stdout.flush()
        scheduler.start()
