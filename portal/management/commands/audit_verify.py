import json
import sys

from django.core.management.base import BaseCommand

from portal.audit.chain import ChainError, verify_sequence
from portal.audit.models import AuditEvent
from portal.audit.chain import CANONICAL_FIELDS


class Command(BaseCommand):
    help = ("Check the audit hash chain in the database, or in a JSONL export with --file. "
            "Exit 0 when intact; otherwise exit 1 and name the first bad event.")

    def add_arguments(self, parser):
        parser.add_argument("--file", help="a JSONL export (GET /api/v1/audit/export?format=jsonl, unfiltered)")

    def handle(self, file=None, **options):
        try:
            if file:
                count = verify_sequence(self._rows_from_file(file))
                where = file
            else:
                from itertools import chain

                from portal.audit.archive import archived_rows
                from portal.audit.models import ArchiveSegment

                names = (*CANONICAL_FIELDS, "hash")
                rows = (dict(zip(names, values, strict=True)) for values in
                        AuditEvent.objects.order_by("seq").values_list(*names).iterator(chunk_size=5000))
                segments = ArchiveSegment.objects.count()
                count = verify_sequence(chain(archived_rows(), rows))
                where = f"the archive ({segments} segment(s)) and the database" if segments else "the database"
        except ChainError as exc:
            self.stderr.write(f"audit chain BROKEN in {file or 'the database'}: {exc}")
            sys.exit(1)
        except (OSError, ValueError) as exc:
            self.stderr.write(f"cannot read {file}: {exc}")
            sys.exit(2)
        self.stdout.write(f"audit chain intact: {count} event(s) verified in {where}")

    def _rows_from_file(self, path):
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {lineno} is not JSON ({exc.msg})") from None
