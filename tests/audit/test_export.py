"""The export written by PostgreSQL (COPY) says exactly what the Python writer says, whatever the text."""
import csv
import io
import json
from unittest import mock

import pytest
from django.db import transaction

from portal.audit import queries
from portal.audit.models import AuditEvent
from portal.audit.services import record

pytestmark = pytest.mark.django_db
AWKWARD = ['=cmd|"/c calc"', 'a "quoted" \\ back\\slash', "two\nlines\tand\rreturns", "ünïcødé ✓ 日本", "-1", "@x",
           "\x01\x02 control", ""]


@pytest.fixture
def awkward_events(deployer):
    with transaction.atomic():
        for n, text in enumerate(AWKWARD):
            record(f"test.{n}", actor_name=text or "system", environment=text, changes={text or "k": [text, None]},
                   detail={"reason": text, "n": n, "ratio": 0.1 + 0.2, "nested": {"list": [1, "two", None]}})
        record("test.person", actor=deployer, target=deployer, detail={"ip": "10.0.0.1"})


def python_writer():
    return mock.patch.object(queries, "_copy_supported", lambda: False)


def test_jsonl_by_copy_is_the_python_jsonl(awkward_events):
    by_copy = "".join(queries.export_jsonl(AuditEvent.objects.all()))
    with python_writer():
        by_python = "".join(queries.export_jsonl(AuditEvent.objects.all()))
    rows = [json.loads(line) for line in by_copy.splitlines()]
    assert rows == [json.loads(line) for line in by_python.splitlines()]
    assert len(rows) == len(AWKWARD) + 1 and rows[-1]["target"].startswith("auth.user:")
    assert "\x02" not in by_copy and "\x01\x02 control" in [r["actor"] for r in rows]


def test_csv_by_copy_is_the_python_csv(awkward_events):
    by_copy = "".join(queries.export_csv(AuditEvent.objects.all()))
    with python_writer():
        by_python = "".join(queries.export_csv(AuditEvent.objects.all()))

    def cells(text):
        rows = list(csv.reader(io.StringIO(text, newline="")))
        return [[json.loads(c) if name in ("changes", "detail") and i else c for name, c in zip(rows[0], row, strict=True)]
                for i, row in enumerate(rows)]

    assert cells(by_copy) == cells(by_python)
    actors = [row[3] for row in cells(by_copy)[1:]]
    assert "'=cmd|\"/c calc\"" in actors and "'-1" in actors and "'@x" in actors  # no formulas


def test_a_filtered_export_and_an_empty_one(awkward_events):
    assert [json.loads(line)["action"] for line in "".join(queries.export_jsonl(
        queries.filter_events({"action": "test.person"}))).splitlines()] == ["test.person"]
    assert "".join(queries.export_jsonl(queries.filter_events({"since": "2999-01-01"}))) == ""
    assert "".join(queries.export_csv(AuditEvent.objects.none())).startswith("id,seq,at,actor")
