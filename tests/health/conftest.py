"""A real Prometheus for the health tests: started per test on a free port, scraping the sandbox every second."""
import time

import pytest

from portal import promserver


@pytest.fixture
def prometheus_server(sandbox):
    if promserver.binary() is None:
        pytest.fail(promserver.INSTALL_HINT)
    with promserver.PrometheusServer([sandbox.url], scrape_interval="1s") as server:
        yield server


def wait_until(predicate, timeout=30.0, interval=0.2):
    """Poll until predicate() returns something truthy; return it (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


@pytest.fixture
def staging(make_env, cluster):
    from portal import kube

    kube.ensure_namespace(cluster, "staging", {})
    return make_env("staging", tier="staging", cluster=cluster, required_approvals=0)


@pytest.fixture
def web(make_service, web_manifest):
    return make_service("web", manifest=web_manifest, team="shop")


def deploy(user, env, version, service="web"):
    """Request and run a deployment to its end through the real job runner (as a worker would)."""
    from deployments.models import Deployment
    from portal.jobs.services import run_job
    from tests.deploy.conftest import queue_deployment

    deployment = queue_deployment(user, env, service, version)
    run_job(str(deployment.job_id))
    deployment = Deployment.objects.get(pk=deployment.pk)
    assert deployment.state == "succeeded", deployment.error
    return deployment


def run_rollback_job(rollback):
    from deployments.models import Deployment
    from portal.jobs.services import run_job

    rollback = Deployment.objects.get(pk=rollback.pk)
    assert rollback.job_id, rollback.state
    run_job(str(rollback.job_id))
    return Deployment.objects.get(pk=rollback.pk)


def seed_cells(envs, services, admin):
    """A cell per (environment, service), its live deployment, every kind of cell: healthy, down with a reason,
    an automatic rollback, and an open deployment waiting in the first service's row."""
    from django.utils import timezone

    from deployments.models import Deployment, Release
    from deployments.monitoring.models import AutoRollback, CellHealth

    now = timezone.now()
    releases = {s.pk: Release.objects.get_or_create(service=s, version="1.0.0", defaults={"image": f"r/{s.name}:1.0.0"})[0]
                for s in services}
    for k, env in enumerate(envs):
        for j, svc in enumerate(services):
            if CellHealth.objects.filter(environment=env, service=svc).exists():
                continue
            live = Deployment.objects.create(release=releases[svc.pk], environment=env, service=svc, state="succeeded",
                                             requested_by=admin, image="x", manifest_hash="0" * 64,
                                             kind="rollback" if j == 1 else "deploy")
            if j == 1:
                bad = Deployment.objects.create(release=releases[svc.pk], environment=env, service=svc, state="rolled_back",
                                                requested_by=admin, image="x", manifest_hash="0" * 64)
                AutoRollback.objects.create(deployment=bad, rollback=live, reason="3 failed probes", outcome="started")
            CellHealth.objects.create(environment=env, service=svc, deployment=live, status="down" if (k + j) % 3 == 0 else "healthy",
                                      reason="/health answered HTTP 503 3 times" if (k + j) % 3 == 0 else "", since=now,
                                      checked_at=now, changed_at=now, version=1, color="blue" if j == 2 else "")
        Deployment.objects.create(release=releases[services[0].pk], environment=env, service=services[0], state="queued",
                                  requested_by=admin, image="x", manifest_hash="0" * 64)
