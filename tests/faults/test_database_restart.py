"""PostgreSQL restarted while a worker runs a deployment: the worker reconnects, the job is sent
again automatically and the deployment finishes; nothing stays running, the audit chain holds.

The test copies its database into a throwaway PostgreSQL cluster it starts (never the shared
server), points a real `rqworker` at that copy and restarts the cluster with pg_ctl mid-job.
"""
import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from portal import kube
from tests.deploy.conftest import queue_deployment
from tests.workers import ROOT, start_worker, wait_for
from tests.workers import worker_env as base_env

pytestmark = pytest.mark.django_db(transaction=True)


def copy_test_database(server):
    """The test database (schema, rows, triggers) into a new database of the throwaway cluster."""
    db = connection.settings_dict
    source = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    target = server.create_database(f"gantry_fault_{os.getpid()}")
    dump = subprocess.run([os.path.join(server.bindir, "pg_dump"), "--no-owner", source], check=True,
                          capture_output=True, text=True).stdout
    subprocess.run([os.path.join(server.bindir, "psql"), "-q", "-v", "ON_ERROR_STOP=1", target], input=dump,
                   check=True, capture_output=True, text=True)
    return target


def query(url, sql, *params):
    """One query on a fresh connection; None while the server is down."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchall()
    except psycopg.OperationalError:
        return None


def test_a_postgres_restart_mid_deployment_ends_with_the_deployment_finished(
        admin, deployer, cluster, sandbox, make_env, make_service, redis_server, throwaway_pg):
    kube.ensure_namespace(cluster, "prod", {})
    prod = make_env("prod", tier="production", cluster=cluster, required_approvals=0)
    make_service("web")
    sandbox.set_fault("web", "never_ready")  # the rollout waits, so the restart lands mid-job
    deployment = queue_deployment(deployer, prod, "web", "1.0.0")
    job_id = str(deployment.job_id)
    url = copy_test_database(throwaway_pg)

    worker = start_worker("deploy", env={"REDIS_URL": redis_server.url, "DATABASE_URL": url})
    try:
        assert wait_for(lambda: query(url, "SELECT 1 FROM jobs_joblogline WHERE job_id = %s AND message = %s",
                                      job_id, "applied Deployment prod/web"), timeout=60), "the job never started"
        throwaway_pg.restart(down_seconds=2)  # every connection of the worker is cut
        sandbox.set_fault("web", "clear")

        def finished():
            rows = query(url, "SELECT j.state, d.state FROM jobs_job j JOIN deployments_deployment d ON d.job_id = j.id "
                              "WHERE j.id = %s", job_id)
            return rows and rows[0][0] in ("succeeded", "failed") and rows[0][1] in ("succeeded", "failed")

        assert wait_for(finished, timeout=120), query(url, "SELECT message FROM jobs_joblogline WHERE job_id = %s", job_id)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)

    (job_state, attempts, error), = query(url, "SELECT state, attempts, error FROM jobs_job WHERE id = %s", job_id)
    lines = [row[0] for row in query(url, "SELECT message FROM jobs_joblogline WHERE job_id = %s ORDER BY id", job_id)]
    assert job_state == "succeeded", (error, lines, output[-3000:])
    assert attempts == 2
    assert any(line.startswith("the database connection was lost during the job") for line in lines), lines
    assert any("sent again automatically (attempt 2" in line for line in lines), lines
    (deployment_state,), = query(url, "SELECT state FROM deployments_deployment WHERE id = %s", deployment.pk)
    assert deployment_state == "succeeded"
    assert query(url, "SELECT count(*) FROM jobs_job WHERE state = 'running'") == [(0,)]
    assert query(url, "SELECT action FROM audit_auditevent WHERE action = 'job.retried'") == [("job.retried",)]
    verify = subprocess.run([sys.executable, "manage.py", "audit_verify"], cwd=ROOT, capture_output=True, text=True, check=False,
                            env=base_env(DATABASE_URL=url))
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr
