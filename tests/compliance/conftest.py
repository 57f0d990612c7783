"""Deployments that really ran (sandbox cluster over HTTP, the real job runner) for compliance tests."""
import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from deployments import releases
from deployments.models import Deployment, Release
from portal import kube
from portal.jobs.services import run_job

DIGEST = "sha256:" + "c" * 64


def image(service, version):
    return f"registry.example.com/shop/{service}:{version}@{DIGEST}"


def release(user, version, service="web", git_sha="3f2a9c1"):
    existing = Release.objects.filter(service__name=service, version=version).first()
    if existing:
        return existing
    return releases.register_release(user, {"service": service, "version": version, "image": image(service, version),
                                              "git_sha": git_sha, "notes": f"release {version}"})


def run(deployment):
    """Run the deployment's job the way a worker does; return the fresh row."""
    deployment = Deployment.objects.get(pk=deployment.pk)
    assert deployment.job_id, f"deployment #{deployment.pk} is {deployment.state} without a job"
    run_job(str(deployment.job_id))
    return Deployment.objects.get(pk=deployment.pk)


def behind_gantrys_back(sql, params=()):
    """Run SQL with triggers off, the way someone with database access could."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


def verify_file(path):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("evidence_verify", str(path), stdout=out, stderr=err)
        return 0, out.getvalue() + err.getvalue()
    except SystemExit as exc:
        return exc.code, out.getvalue() + err.getvalue()


def texts(pack, key=None):
    return [s["text"] for s in pack["statements"] if key is None or s["key"] == key]


@pytest.fixture
def prod(make_env, cluster):
    kube.ensure_namespace(cluster, "prod", {})
    return make_env("prod", tier="production", cluster=cluster, required_approvals=1, prevent_self_approval=True,
                    checklist=["Release notes read", "On-call informed"])


@pytest.fixture
def auditor(make_user):
    return make_user("audrey", "viewer")


@pytest.fixture
def people(make_user, prod):
    return {
        "dee": make_user("dee", "deployer"),
        "abe": make_user("abe", ("approver", prod)),
        "ann": make_user("ann", ("approver", prod)),
        "ada": make_user("ada", "admin"),
    }


@pytest.fixture
def write_pack(tmp_path):
    def writer(pack, name="pack.json"):
        path = tmp_path / name
        path.write_text(json.dumps(pack, indent=2))
        return path

    return writer
