"""Probing: the board's cells follow what the sandbox serves; one change row and one audit event per change."""
import pytest

from deployments.monitoring import probing
from deployments.monitoring.models import CellHealth, HealthChange, HealthCheck, HealthMinute
from portal.audit.models import AuditEvent

from .conftest import deploy

pytestmark = pytest.mark.django_db


def cell(env, service="web"):
    return CellHealth.objects.get(environment=env, service__name=service)


def test_a_deployed_service_is_healthy_on_the_board(deployer, staging, web):
    deploy(deployer, staging, "1.0.0")  # the deploy job probes the environment at once
    found = cell(staging)
    assert found.status == "healthy"
    assert found.deployment.release.version == "1.0.0"
    assert found.ready_replicas == found.desired_replicas == 1
    assert found.latency_ms is not None


def test_a_failing_health_path_degrades_then_goes_down_and_recovers(deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")
    sandbox.set_fault("web", "fail_probe")
    probing.probe_environments([staging.pk])
    assert (cell(staging).status, cell(staging).consecutive_failures) == ("degraded", 1)
    assert "/health answered HTTP 503" in cell(staging).reason
    assert "Kubernetes Status" not in cell(staging).reason  # the service's own answer, not a cluster error
    probing.probe_environments([staging.pk])
    assert cell(staging).status == "degraded"
    probing.probe_environments([staging.pk])
    down = cell(staging)
    assert down.status == "down"
    assert down.reason.startswith("/health answered HTTP 503") and down.reason.endswith("3 times in a row")
    sandbox.set_fault("web", "clear")
    probing.probe_environments([staging.pk])
    assert cell(staging).status == "healthy"
    assert cell(staging).consecutive_failures == 0
    changes = list(HealthChange.objects.filter(environment=staging).order_by("at", "id").values_list("from_status", "to_status"))
    assert changes == [("unknown", "healthy"), ("healthy", "degraded"), ("degraded", "down"), ("down", "healthy")]
    audited = AuditEvent.objects.filter(action="health.changed", environment="staging").count()
    assert audited == len(changes)
    assert HealthCheck.objects.filter(environment=staging).count() == 5


def test_a_missing_deployment_is_down(deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")
    from portal import kube

    kube.delete(staging.cluster, "apps/v1", "Deployment", "staging", "web")
    probing.probe_environments([staging.pk])
    assert cell(staging).status == "down"
    assert "missing" in cell(staging).reason


def test_an_unreachable_cluster_makes_the_cell_unknown(deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")
    sandbox.stop()
    probing.probe_environments([staging.pk])
    assert cell(staging).status == "unknown"
    assert "cluster not reachable" in cell(staging).reason


def test_minute_aggregates_count_checks_and_failures(deployer, staging, web, sandbox):
    deploy(deployer, staging, "1.0.0")
    sandbox.set_fault("web", "fail_probe")
    probing.probe_environments([staging.pk])
    totals = HealthMinute.objects.filter(environment=staging)
    assert sum(m.checks for m in totals) == 2
    assert sum(m.failures for m in totals) == 1


def test_work_is_split_into_shards(settings, make_env, cluster):
    settings.GANTRY_PROBE_SHARD_SIZE = 2
    for index in range(5):
        make_env(f"env-{index}", cluster=cluster)
    parts = probing.shards()
    assert [len(p) for p in parts] == [2, 2, 1]


def test_pruning_keeps_48_hours_of_checks_and_30_days_of_minutes(deployer, staging, web):
    from datetime import timedelta

    from django.utils import timezone

    from deployments.monitoring.jobs import prune_health

    deploy(deployer, staging, "1.0.0")
    now = timezone.now()
    HealthCheck.objects.update(at=now - timedelta(hours=49))
    HealthMinute.objects.update(minute=now - timedelta(days=29))
    assert prune_health(now) == (1, 0)
    HealthMinute.objects.update(minute=now - timedelta(days=31))
    assert prune_health(now) == (0, 1)


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_environment_create_each_cell_and_change_once(deployer, staging, web, sandbox):
    """A shard job and the deploy job's probe (or refresh=true) may probe one environment at once."""
    import threading

    from django.db import connection

    deploy(deployer, staging, "1.0.0")
    CellHealth.objects.all().delete()
    HealthChange.objects.all().delete()
    start, errors = threading.Barrier(2), []

    def probe():
        try:
            start.wait()
            probing.probe_environments([staging.pk])
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=probe) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert CellHealth.objects.filter(environment=staging).count() == 1
    assert list(HealthChange.objects.filter(environment=staging).values_list("from_status", "to_status")) == [("unknown", "healthy")]
    assert HealthCheck.objects.filter(environment=staging).count() == 3  # the deploy job's probe, then both


def test_a_steady_probe_costs_the_same_queries_whatever_the_number_of_services(deployer, staging, web, make_service,
                                                                                web_manifest, sandbox):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    deploy(deployer, staging, "1.0.0")
    probing.probe_environments([staging.pk])  # steady: the cell exists and keeps its workload
    with CaptureQueriesContext(connection) as one_service:
        probing.probe_environments([staging.pk])
    make_service("api", manifest=web_manifest)
    deploy(deployer, staging, "1.0.0", service="api")
    probing.probe_environments([staging.pk])
    with CaptureQueriesContext(connection) as two_services:
        probing.probe_environments([staging.pk])
    assert CellHealth.objects.filter(environment=staging, status="healthy").count() == 2
    assert len(two_services) == len(one_service), [q["sql"][:80] for q in two_services]


def test_a_shard_still_waiting_from_an_earlier_cycle_is_not_sent_again(staging, caplog,
                                                                        django_capture_on_commit_callbacks):
    import django_rq

    def cycle():
        with django_capture_on_commit_callbacks(execute=True):  # django-rq sends on commit
            return probing.probe_all()

    queue = django_rq.get_queue("health")
    queue.empty()
    try:
        assert cycle() == 1
        assert queue.count == 1
        with caplog.at_level("WARNING", logger="gantry.health"):
            assert cycle() == 0  # the first cycle's job has not run: no pile-up
        assert queue.count == 1
        assert "1 shard(s) still waiting or running from an earlier cycle" in caplog.text

        job = queue.fetch_job(probing.shard_job_id([staging.pk]))
        queue.remove(job)
        job.set_status("finished")  # it ran: the next cycle sends the shard again
        assert cycle() == 1
        assert queue.count == 1
    finally:
        queue.empty()
