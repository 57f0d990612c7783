"""Evidence for a period: one ZIP of packs with a CSV index, built by a job with progress."""
import csv
import io
import json
import zipfile

import pytest

from deployments import actions
from portal.jobs.models import Job
from portal.jobs.services import run_job

from .conftest import release, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def evidence_dir(settings, tmp_path):
    settings.GANTRY_EVIDENCE_DIR = str(tmp_path / "evidence")


def test_a_period_zip_holds_a_pack_per_production_deployment(people, prod, web, api, auditor, client):
    from environments.models import Environment

    Environment.objects.filter(pk=prod.pk).update(required_approvals=0, checklist=[])
    first = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.0.0").pk,
                                                             "environment": "prod"}))
    second = run(actions.request_deployment(people["dee"], {"release": release(people["dee"], "1.1.0").pk,
                                                              "environment": "prod"}))
    assert api(people["dee"]).post("/api/v1/reports/evidence-period", {"since": "2020-01-01",
                                                                      "until": "2099-12-31"}).status_code == 403
    bad = api(auditor).post("/api/v1/reports/evidence-period", {"since": "2026-12-31", "until": "2026-01-01"})
    assert bad.status_code == 400 and "after since" in bad.json()["detail"]
    answer = api(auditor).post("/api/v1/reports/evidence-period", {"since": "2020-01-01", "until": "2099-12-31"})
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    assert api(auditor).get(f"/api/v1/reports/evidence-period/{job_id}.zip").status_code == 409  # not built yet
    run_job(job_id)
    job = Job.objects.get(pk=job_id)
    assert job.state == "succeeded", job.error
    assert "progress: 2/2 pack(s) built" in job.log_lines.values_list("message", flat=True)
    download = api(auditor).get(f"/api/v1/reports/evidence-period/{job_id}.zip")
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    index = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
    assert [int(r["deployment"]) for r in index] == [first.pk, second.pk]
    assert all(r["verified"] == "True" for r in index)
    for row in index:
        pack = json.loads(archive.read(f"{row['folder']}pack.json"))
        assert pack["sha256"] == row["pack_sha256"]
        assert f"{row['folder']}manifests/deployment-{row['deployment']}.yaml" in archive.namelist()
    client.force_login(auditor)
    page = client.get("/compliance/period/").content.decode()
    assert "2 of 2 pack(s)" in page and f"/compliance/period/{job_id}.zip" in page
    assert client.get(f"/compliance/period/{job_id}.zip").status_code == 200


def test_the_period_page_starts_a_job_and_refuses_bad_dates(auditor, client):
    client.force_login(auditor)
    bad = client.post("/compliance/period/", {"since": "2026-10-01", "until": "soon"})
    assert bad.status_code == 400 and "not a date" in bad.content.decode()
    assert not Job.objects.filter(kind="compliance.period_evidence").exists()
    started = client.post("/compliance/period/", {"since": "2026-10-01", "until": "2026-12-31"})
    assert started.status_code == 302
    job = Job.objects.get(kind="compliance.period_evidence")
    assert job.params["until"].startswith("2027-01-01")  # the last day is included


def test_the_period_schema_is_the_same_for_page_and_api(auditor, api, client):
    """deployments.compliance.schemas.PeriodRequest: both ends, each a date or a zoned time, in order."""
    url = "/api/v1/reports/evidence-period"
    blank = api(auditor).post(url, {"since": "", "until": "2026-12-31"})
    assert blank.status_code == 400
    assert blank.json()["detail"] == "since and until: both required (dates such as 2026-10-01 and 2026-12-31)"
    naive = api(auditor).post(url, {"since": "2026-10-01T08:00:00", "until": "2026-12-31"})
    assert naive.json()["detail"] == "since: give a time zone offset (e.g. +09:00 or Z)"
    client.force_login(auditor)
    page = client.post("/compliance/period/", {"since": "", "until": "2026-12-31"})
    assert page.status_code == 400 and "both required" in page.content.decode()
    assert not Job.objects.filter(kind="compliance.period_evidence").exists()
    report = api(auditor).get("/api/v1/reports/separation-of-duties?since=2026-12-31&until=2026-01-01")
    assert report.status_code == 400 and report.json()["detail"] == "until: must be after since"
