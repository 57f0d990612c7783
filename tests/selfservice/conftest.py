import pytest

from portal.jobs.models import Job
from portal.jobs.services import run_job


@pytest.fixture
def provision(django_capture_on_commit_callbacks):
    """Run the environment's latest provisioning job in-process (what a worker does); returns the Job."""

    def run(env_slug):
        job = Job.objects.filter(kind="environment.provision", target_repr=env_slug).order_by("-created_at").first()
        assert job is not None, f"no provisioning job for {env_slug}"
        with django_capture_on_commit_callbacks(execute=False):
            run_job(str(job.pk))
        return Job.objects.get(pk=job.pk)

    return run


@pytest.fixture(autouse=True)
def seeded_templates(request):
    """The four templates the data migration seeds (a transactional test elsewhere may have flushed them)."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    request.getfixturevalue("django_db_blocker")
    from environments.models import EnvironmentTemplate
    from environments.template_defaults import seed_templates

    seed_templates(EnvironmentTemplate)
