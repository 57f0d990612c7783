import json
import sys
import zipfile

from django.core.management.base import BaseCommand

from deployments.compliance.evidence import verify_pack


class Command(BaseCommand):
    help = ("Check an evidence pack offline (pack.json, or the ZIP the portal gives): its SHA-256, the hash of "
            "each audit event it carries, and that every statement follows from those events. Exit 0 when "
            "intact, 1 when not, 2 when the file cannot be read.")

    def add_arguments(self, parser):
        parser.add_argument("pack", help="pack.json, the JSON of GET /api/v1/deployments/{id}/evidence, or the ZIP")

    def handle(self, pack, **options):
        try:
            data = self._load(pack)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            self.stderr.write(f"cannot read {pack}: {exc}")
            sys.exit(2)
        problems = verify_pack(data)
        if problems:
            self.stderr.write(f"evidence pack NOT intact ({pack}):")
            for problem in problems:
                self.stderr.write(f"  - {problem}")
            sys.exit(1)
        self.stdout.write(f"evidence pack intact: deployment #{data['deployment']['id']}, "
                          f"{len(data['events'])} audit event(s), {len(data['statements'])} statement(s), "
                          f"sha256 {data['sha256']}")

    def _load(self, path):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("pack.json").decode("utf-8"))
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
