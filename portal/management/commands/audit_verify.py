import json
import sys
from itertools import chain

from django.core.management.base import BaseCommand

from portal.audit import checkpoints
from portal.audit.archive import archived_rows
from portal.audit.chain import ChainError, verify_sequence
from portal.audit.models import ArchiveSegment
from portal.audit.queries import chain_rows


class Command(BaseCommand):
    help = ("Check the audit hash chain in the database, or in a JSONL export with --file. In the database, "
            "the chain is also compared with the latest signed checkpoint, which reveals truncation and deleted "
            "newest events. Exit 0 when intact; otherwise exit 1 and name the first bad event.")

    def add_arguments(self, parser):
        parser.add_argument("--file", help="a JSONL export (GET /api/v1/audit/export?format=jsonl, unfiltered)")

    def handle(self, file=None, **options):
        try:
            if file:
                count = verify_sequence(self._rows_from_file(file))
                where = file
            else:
                rows = chain_rows()
                segments = ArchiveSegment.objects.count()
                count = verify_sequence(chain(archived_rows(), rows))
                where = f"the archive ({segments} segment(s)) and the database" if segments else "the database"
        except ChainError as exc:
            self.stderr.write(f"audit chain BROKEN in {file or 'the database'}: {exc}")
            sys.exit(1)
        except (OSError, ValueError) as exc:
            self.stderr.write(f"cannot read {file}: {exc}")
            sys.exit(2)
        note = ""
        if not file:
            note = self._against_checkpoint()
        self.stdout.write(f"audit chain intact: {count} event(s) verified in {where}{note}")

    def _against_checkpoint(self):
        if not checkpoints.configured():
            return " (no checkpoint place configured: truncation and deleted newest events cannot be detected)"
        try:
            checkpoint = checkpoints.latest_checkpoint()
        except checkpoints.CheckpointError as exc:
            self.stderr.write(f"audit chain NOT VERIFIED against its checkpoint: {exc}")
            sys.exit(1)
        if checkpoint is None:
            return " (no checkpoint written yet)"
        problems = checkpoints.compare_with_checkpoint(checkpoint)
        if problems:
            self.stderr.write("audit chain BROKEN in the database: " + "; ".join(problems))
            sys.exit(1)
        return f"; consistent with the checkpoint of {checkpoint['at']} (#{checkpoint['seq']})"

    def _rows_from_file(self, path):
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {lineno} is not JSON ({exc.msg})") from None
