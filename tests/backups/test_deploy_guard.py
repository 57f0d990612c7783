"""The protection rule "backup newer than N minutes before deploying": the deploy job takes one first
(logged in the same job) or refuses with the reason."""
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import Deployment
from environments.backups.models import Backup
from environments.backups.services import start_backup
from portal import kube
from portal.jobs.models import Job
from portal.jobs.services import run_job
from tests.deploy.conftest import queue_deployment

from .conftest import run_jobs_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(make_env, cluster):
    kube.ensure_namespace(cluster, "live", {})
    return make_env("live", tier="staging", cluster=cluster)


def deploy(user, env):
    deployment = queue_deployment(user, env, "web", "1.0.0")
    run_job(str(deployment.job_id))
    return Deployment.objects.get(pk=deployment.pk), Job.objects.get(pk=deployment.job_id)


def log_of(job):
    return list(job.log_lines.values_list("message", flat=True))


def test_take_backs_up_inside_the_deploy_job_then_deploys(admin, live, make_service, source_db, make_target, tmp_path):
    make_service("web")
    make_target(live, source_db, {"kind": "local", "path": str(tmp_path)}, deploy_guard="take",
                deploy_guard_minutes=30)

    deployment, job = deploy(admin, live)

    assert deployment.state == "succeeded", deployment.error
    backup = Backup.objects.get()
    assert (backup.state, backup.trigger, backup.job_id, backup.who) == ("succeeded", "deployment", job.pk,
                                                                         "a deployment's protection rule")
    lines = log_of(job)
    rule = next(i for i, line in enumerate(lines) if line.startswith("backup rule: live requires a backup of main-db"))
    assert "there is no good backup; backing it up now, before deploying" in lines[rule]
    assert any(line.startswith("stored ") and backup.sha256 in line for line in lines)
    applied = next(i for i, line in enumerate(lines) if line.startswith("applied "))
    assert rule < applied  # the backup came first


def test_a_fresh_backup_lets_the_deployment_go_on_without_another(admin, live, make_service, source_db, make_target,
                                                                  tmp_path):
    make_service("web")
    target = make_target(live, source_db, {"kind": "local", "path": str(tmp_path)}, deploy_guard="refuse",
                         deploy_guard_minutes=30)
    run_jobs_of(start_backup(target, user=admin))

    deployment, job = deploy(admin, live)

    assert deployment.state == "succeeded", deployment.error
    assert Backup.objects.count() == 1
    assert any(line.startswith("backup rule: main-db has a good backup from ") for line in log_of(job))


def test_refuse_fails_the_deployment_with_the_reason_when_the_backup_is_too_old(admin, live, make_service, source_db,
                                                                               make_target, tmp_path, sandbox):
    make_service("web")
    target = make_target(live, source_db, {"kind": "local", "path": str(tmp_path)}, deploy_guard="refuse",
                         deploy_guard_minutes=60)
    backup = run_jobs_of(start_backup(target, user=admin))
    Backup.objects.filter(pk=backup.pk).update(finished_at=timezone.now() - timedelta(hours=3))

    deployment, job = deploy(admin, live)

    assert deployment.state == "failed"
    assert deployment.error == ("live requires a backup of main-db newer than 1 hour before deploying, and the newest "
                                "good backup is 3 hours old: back it up (Backups page or POST "
                                "/api/v1/environments/live/backups), then deploy again")
    assert job.state == "failed" and job.error == deployment.error
    assert sandbox.list("deployments", "live") == []  # nothing applied
    assert Backup.objects.count() == 1


def test_a_failed_rule_backup_fails_the_deployment(admin, live, make_service, make_target, tmp_path, sandbox):
    make_service("web")
    make_target(live, "postgres://postgres@db.invalid/app", {"kind": "local", "path": str(tmp_path)},
                deploy_guard="take")

    deployment, job = deploy(admin, live)

    assert deployment.state == "failed"
    assert deployment.error == ("the backup the rule requires failed: the host db.invalid is unknown (DNS lookup "
                                "failed): correct the host in the target's DSN")
    assert Backup.objects.get().state == "failed"
    assert sandbox.list("deployments", "live") == []
