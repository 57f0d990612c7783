"""The files that run Gantry itself: Dockerfile, docker-compose.yml and the Kubernetes manifests.

No Docker engine or cluster is at hand, so these check what can be checked offline: the files
parse, the processes they start exist, probes point at the real health endpoints, and every
Kubernetes object passes the real API schema (kubernetes-validate). No database needed.
"""
import importlib.util
import json
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.conf import settings
from django.urls import resolve

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30"
APP_SERVICES = ("migrate", "web", "worker", "scheduler")


# --- helpers --------------------------------------------------------------------------------


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def dockerfile_args(keyword):
    return [rest for key, rest in dockerfile_instructions() if key == keyword]


def exec_form(arguments):
    """A Dockerfile CMD/HEALTHCHECK command as a list, whether written as JSON or shell form."""
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_command(service):
    command = compose()["services"][service]["command"]
    return command if isinstance(command, list) else shlex.split(command)


def manifest_files():
    return sorted(DEPLOY.glob("*.yaml"))


def k8s_documents():
    """(file name, document) for every Kubernetes object in deploy/ (kustomization excluded)."""
    docs = []
    for path in manifest_files():
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def deployments():
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == "Deployment"}


def containers_of(doc):
    return doc["spec"]["template"]["spec"]["containers"]


def config_map():
    (doc,) = [doc for _, doc in k8s_documents() if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "gantry-config"]
    return doc["data"]


def compose_default(value):
    """The default of a ${NAME:-default} value in the compose file, or the value itself."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def rq_queues(command):
    return command[command.index("rqworker") + 1:]


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_uses_python_311_slim_bookworm():
    (base,) = dockerfile_args("FROM")
    assert base.startswith("python:3.11-slim-bookworm")


def test_dockerfile_runs_as_a_non_root_user():
    users = dockerfile_args("USER")
    assert users, "the image must switch away from root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user in ("10001", "gantry")


def test_dockerfile_installs_dependencies_before_copying_the_source():
    """Editing a source file must not reinstall every dependency."""
    steps = dockerfile_instructions()
    install = next(i for i, (key, rest) in enumerate(steps) if key == "RUN" and "requirements.lock" in rest)
    copy_lock = next(i for i, (key, rest) in enumerate(steps) if key == "COPY" and "requirements.lock" in rest)
    copy_all = next(i for i, (key, rest) in enumerate(steps) if key == "COPY" and rest.split()[0] == ".")
    assert copy_lock < install < copy_all


def test_dockerfile_collects_static_files_without_a_real_secret():
    (collect,) = [rest for rest in dockerfile_args("RUN") if "collectstatic" in rest]
    assert "--noinput" in collect
    assert "SECRET_KEY=" in collect  # settings refuse to load without one when DEBUG is off
    assert "DEBUG" not in collect  # whitenoise's manifest storage is used only with DEBUG off


def test_dockerfile_installs_pg_dump_for_backups():
    assert any("postgresql-client" in rest for rest in dockerfile_args("RUN"))


def test_dockerfile_exposes_8000_and_checks_healthz_with_python():
    assert "8000" in dockerfile_args("EXPOSE")
    (healthcheck,) = dockerfile_args("HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + len("CMD"):].strip())
    assert command[0] == "python"
    assert "urllib" in command[-1]
    assert "http://127.0.0.1:8000/healthz" in command[-1]


def test_dockerfile_cmd_runs_gunicorn_on_an_existing_wsgi_module():
    (cmd,) = dockerfile_args("CMD")
    command = exec_form(cmd)
    assert command[0] == "gunicorn"
    assert "portal.wsgi:application" in command
    assert "0.0.0.0:8000" in command
    module, _, attribute = "portal.wsgi:application".partition(":")
    assert (ROOT / "portal" / "wsgi.py").is_file()
    spec = importlib.util.find_spec(module)
    assert spec is not None and Path(spec.origin) == ROOT / "portal" / "wsgi.py"
    wsgi = importlib.import_module(module)
    assert callable(getattr(wsgi, attribute))


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "gantry.sqlite3*", "staticfiles", ".env"} <= ignored
    assert "requirements.lock" not in ignored and "manage.py" not in ignored


# --- docker-compose.yml ---------------------------------------------------------------------


def test_compose_defines_every_service():
    services = compose()["services"]
    assert {"web", "worker", "scheduler", "db", "redis", "minio", "migrate"} <= set(services)


def test_compose_web_healthcheck_hits_healthz():
    web = compose()["services"]["web"]
    test = web["healthcheck"]["test"]
    assert "/healthz" in (" ".join(test) if isinstance(test, list) else test)
    assert web["ports"] == ["8000:8000"]


def test_compose_web_waits_for_migrations_and_redis():
    depends = compose()["services"]["web"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    assert compose()["services"]["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_runs_the_real_commands():
    assert compose_command("migrate") == ["python", "manage.py", "migrate", "--noinput"]
    assert compose_command("web")[:2] == ["gunicorn", "portal.wsgi:application"]
    assert compose_command("scheduler") == ["python", "manage.py", "scheduler"]
    assert (ROOT / "portal" / "management" / "commands" / "scheduler.py").is_file()


def test_compose_worker_listens_on_every_queue_gantry_uses():
    assert set(rq_queues(compose_command("worker"))) == set(settings.RQ_QUEUES)


def test_compose_app_services_share_one_environment():
    data = compose()
    services = data["services"]
    shared = data["x-gantry-env"]
    for name in APP_SERVICES:
        assert services[name]["environment"] == shared, name
    assert shared["DATABASE_URL"] == "postgres://gantry:gantry@db:5432/gantry"
    assert shared["REDIS_URL"] == "redis://redis:6379/0"
    assert shared["SECRET_KEY"] == "${SECRET_KEY:?set SECRET_KEY}"  # refuses to start without one
    assert shared["GANTRY_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert shared["GANTRY_S3_BUCKET"] == "gantry-backups"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GANTRY_ENCRYPTION_KEY"} <= set(shared)


def test_compose_healthcheck_host_is_allowed_by_default():
    """The healthcheck sends "Host: localhost"; Django answers 400 to a host not allowed."""
    shared = compose()["x-gantry-env"]
    assert "localhost" in compose_default(shared["ALLOWED_HOSTS"]).split(",")


def test_compose_plain_http_turns_off_https_only_settings():
    shared = compose()["x-gantry-env"]
    assert shared["GANTRY_SSL_REDIRECT"] == "0"
    assert shared["GANTRY_SECURE_COOKIES"] == "0"


def test_compose_backing_services_have_healthchecks_and_volumes():
    services = compose()["services"]
    assert services["db"]["image"] == "postgres:15"
    assert services["redis"]["image"].startswith("redis:7")
    assert services["minio"]["command"] == "server /data --console-address :9001"
    for name in ("db", "redis", "minio"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["volumes"], name
    assert set(compose()["volumes"]) >= {"pgdata"}


# --- Kubernetes manifests -------------------------------------------------------------------


def test_every_manifest_file_loads():
    names = {path.name for path in manifest_files()}
    assert {"namespace.yaml", "configmap.yaml", "secret.example.yaml", "serviceaccount-rbac.yaml",
            "migrate-job.yaml", "web.yaml", "worker.yaml", "scheduler.yaml", "ingress.yaml",
            "kustomization.yaml"} <= names
    for path in manifest_files():
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert docs, path.name


@pytest.mark.parametrize("name_and_doc", k8s_documents(), ids=lambda item: f"{item[0]}:{item[1]['kind']}")
def test_every_manifest_passes_the_kubernetes_schema(name_and_doc):
    _, doc = name_and_doc
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_object_is_labelled_gantry_with_a_component():
    for name, doc in k8s_documents():
        labels = doc["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/name") == "gantry", (name, doc["kind"])
        assert labels.get("app.kubernetes.io/component"), (name, doc["kind"])


def test_kustomization_lists_every_manifest_but_the_example_secret():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    expected = {path.name for path in manifest_files()} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == expected


def test_web_worker_and_scheduler_deployments_exist():
    assert set(deployments()) == {"gantry-web", "gantry-worker", "gantry-scheduler"}


def test_every_deployment_has_readiness_and_only_the_web_a_liveness_probe():
    """A liveness probe pinging Redis or PostgreSQL would restart workers and the scheduler in an
    outage, cutting off running deployments; they reconnect by themselves (docs/operations.md)."""
    for name, doc in deployments().items():
        for container in containers_of(doc):
            assert container.get("readinessProbe"), name
            assert bool(container.get("livenessProbe")) == (name == "gantry-web"), name


def test_every_deployment_selects_its_own_pods():
    for name, doc in deployments().items():
        selector = doc["spec"]["selector"]["matchLabels"]
        pod_labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items(), name


def test_web_probes_hit_the_health_endpoints():
    (web,) = containers_of(deployments()["gantry-web"])
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Ready when the database answers: a Redis outage only delays jobs, pages keep being served.
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz?need=database"
    assert resolve("/healthz").url_name == "healthz"
    assert resolve("/readyz").url_name == "readyz"
    assert deployments()["gantry-web"]["spec"]["replicas"] == 2


def test_web_probes_send_a_host_that_allowed_hosts_accepts():
    """The kubelet would send the pod IP as Host, which Django refuses with 400."""
    (web,) = containers_of(deployments()["gantry-web"])
    allowed = config_map()["ALLOWED_HOSTS"].split(",")
    for probe in ("livenessProbe", "readinessProbe"):
        headers = {h["name"].lower(): h["value"] for h in web[probe]["httpGet"].get("httpHeaders", [])}
        assert headers.get("host") in allowed, probe


def test_web_service_targets_the_web_pods():
    (service,) = [doc for _, doc in k8s_documents() if doc["kind"] == "Service" and doc["metadata"]["name"] == "gantry-web"]
    web = deployments()["gantry-web"]
    assert service["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()
    (port,) = containers_of(web)[0]["ports"]
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])


def test_worker_listens_on_every_queue_and_probes_redis():
    (worker,) = containers_of(deployments()["gantry-worker"])
    assert set(rq_queues(worker["command"])) == set(settings.RQ_QUEUES)
    assert "ping()" in worker["readinessProbe"]["exec"]["command"][-1]


def test_redis_keeps_its_queue_across_restarts_with_aof():
    command = compose()["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    (redis,) = [doc for _, doc in k8s_documents() if doc["kind"] == "StatefulSet"]
    (container,) = containers_of(redis)
    assert "--appendonly yes" in container["command"][-1] and "--dir /data" in container["command"][-1]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/data"}
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert redis["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    secret = yaml.safe_load((DEPLOY / "secret.example.yaml").read_text())["stringData"]
    assert "@gantry-redis:6379/" in secret["REDIS_URL"] and secret["REDIS_PASSWORD"]


def test_scheduler_runs_once():
    scheduler = deployments()["gantry-scheduler"]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert containers_of(scheduler)[0]["command"] == ["python", "manage.py", "scheduler"]


def test_pods_run_as_non_root_with_a_read_only_root_filesystem():
    pods = [doc for _, doc in k8s_documents() if doc["kind"] in ("Deployment", "Job")]
    assert len(pods) == 4
    for doc in pods:
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        mounts_tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert any(m["mountPath"] == "/tmp" and m["name"] in mounts_tmp for m in container["volumeMounts"])
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_migrate_job_runs_migrations():
    (job,) = [doc for _, doc in k8s_documents() if doc["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_service_account_is_bound_and_used():
    docs = [doc for _, doc in k8s_documents()]
    (binding,) = [doc for doc in docs if doc["kind"] == "ClusterRoleBinding"]
    (role,) = [doc for doc in docs if doc["kind"] == "ClusterRole"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {"kind": "ServiceAccount", "name": "gantry", "namespace": "gantry"} in binding["subjects"]
    for name, doc in deployments().items():
        assert doc["spec"]["template"]["spec"]["serviceAccountName"] == "gantry", name


def test_cluster_role_covers_the_kinds_gantry_manages():
    (role,) = [doc for _, doc in k8s_documents() if doc["kind"] == "ClusterRole"]
    granted = {}
    for rule in role["rules"]:
        for resource in rule["resources"]:
            granted.setdefault(resource, set()).update(rule["verbs"])
    for resource in ("namespaces", "deployments", "services", "configmaps", "resourcequotas", "limitranges",
                     "networkpolicies", "horizontalpodautoscalers", "ingresses"):
        assert {"get", "list", "create", "update", "patch", "delete"} <= granted.get(resource, set()), resource
    assert {"get", "list"} <= granted["pods"]
    assert "get" in granted["services/proxy"]
    assert "secrets" not in granted  # never granted by default
