"""Template services are deployed at creation through the normal path; a manifest without resource
requests runs where the template's LimitRange gives defaults, and the approval page shows them."""
import pytest

from deployments.models import Deployment, Release
from environments.models import EnvironmentTemplate
from portal.jobs.services import run_job
from tests.fixtures_data import WEB_MANIFEST, WEB_MANIFEST_WITHOUT_RESOURCES

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/shop/web:1.0.0@sha256:" + "c" * 64


def test_a_preview_gets_the_release_that_last_succeeded_in_dev_and_its_pods_get_the_defaults(
        api, deployer, login, cluster, sandbox, make_env, make_service, provision, django_capture_on_commit_callbacks):
    assert WEB_MANIFEST_WITHOUT_RESOURCES != WEB_MANIFEST
    web = make_service("web", manifest=WEB_MANIFEST_WITHOUT_RESOURCES)
    dev = make_env("dev", cluster=cluster)
    release = Release.objects.create(service=web, version="1.0.0", image=IMAGE)
    Deployment.objects.create(release=release, environment=dev, service=web, state="succeeded", image=IMAGE,
                              manifest_hash="0" * 64)
    EnvironmentTemplate.objects.filter(name="preview").update(services=[{"service": "web", "from_environment": "dev"}])
    assert api(deployer).post("/api/v1/environments", {"name": "pr-90", "template": "preview"}).status_code == 201
    job = provision("pr-90")
    assert job.state == "succeeded", job.error
    deployment = Deployment.objects.get(environment__slug="pr-90")
    assert deployment.release == release and deployment.requested_by == deployer
    with django_capture_on_commit_callbacks(execute=False):
        run_job(str(deployment.job_id))
    deployment.refresh_from_db()
    assert deployment.state == "succeeded", deployment.error
    pods = sandbox.list("pods", "pr-90")
    assert pods and pods[0]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    used = sandbox.get("resourcequotas", "gantry-quota", "pr-90")["status"]["used"]
    assert used["requests.cpu"] == "250m" and used["limits.memory"] == "512Mi"
    client = login(deployer)
    page = client.get("/environments/pr-90/provisioning/").content.decode()
    assert "web 1.0.0" in page and "is ready" in page
    detail = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "Effective container resources" in detail and "250m <span class=\"muted\">(LimitRange default)</span>" in detail


def test_the_same_bare_manifest_is_refused_where_nothing_defaults_its_resources(deployer, cluster, make_env,
                                                                                 make_service):
    from deployments.actions import request_deployment
    from portal.errors import InvalidInput

    web = make_service("web", manifest=WEB_MANIFEST_WITHOUT_RESOURCES)
    make_env("plain", cluster=cluster)
    release = Release.objects.create(service=web, version="1.0.0", image=IMAGE)
    with pytest.raises(InvalidInput) as refused:
        request_deployment(deployer, {"release": release.pk, "environment": "plain"})
    assert "environment plain has no LimitRange defaults" in str(refused.value)
