"""GET /api/v1/jobs names each job by its kind's title, the same words as the pages."""
from portal.jobs.models import Job, JobLogLine


def test_jobs_carry_their_kinds_title_in_the_list_and_alone(api, viewer):
    job = Job.objects.create(kind="environment.provision", state="running")
    JobLogLine.objects.create(job=job, message="applying Namespace dev")
    client = api(viewer)
    listed = client.get("/api/v1/jobs").json()
    assert [(j["kind"], j["title"]) for j in listed] == [("environment.provision", "Provision environment")]
    one = client.get(f"/api/v1/jobs/{job.pk}").json()
    assert one["title"] == "Provision environment" and one["log"][0]["message"] == "applying Namespace dev"
