from django.core.management.base import BaseCommand
from django.db import transaction

from portal.jobs.models import Job
from portal.jobs.services import enqueue_job, run_job


class Command(BaseCommand):
    help = ("Archive audit events older than GANTRY_AUDIT_RETENTION_DAYS to JSONL segments (GANTRY_AUDIT_ARCHIVE_DIR) "
            "and remove them from the table, as the archiving job (run here, now). audit_verify then checks "
            "archive + database.")

    def handle(self, **options):
        with transaction.atomic():
            job = enqueue_job("audit.archive")
        run_job(str(job.pk))
        job = Job.objects.get(pk=job.pk)
        for line in job.log_lines.order_by("id").values_list("message", flat=True):
            self.stdout.write(line)
        if job.state != "succeeded":
            self.stderr.write(f"archiving failed: {job.error}")
            raise SystemExit(1)
