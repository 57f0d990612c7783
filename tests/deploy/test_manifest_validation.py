"""Saving a service checks its manifest at once: YAML, the Kubernetes schema, Gantry's policy."""
import pytest

from deployments.catalog import create_service, update_service
from deployments.manifests import ManifestError, environment_policy_problems, validate_manifest
from deployments.models import Service
from environments.models import Environment
from portal.demo_data import SERVICES
from portal.errors import InvalidInput
from tests.fixtures_data import WEB_MANIFEST, WEB_MANIFEST_WITHOUT_RESOURCES

pytestmark = pytest.mark.django_db



def line_of(text, needle):
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


def refusal(admin, manifest, **extra):
    with pytest.raises(InvalidInput) as refused:
        create_service(admin, {"name": "web", "manifest": manifest, **extra})
    assert not Service.objects.exists()
    return refused.value.detail if isinstance(refused.value.detail, list) else [refused.value.detail]


def problems_of(manifest):
    with pytest.raises(ManifestError) as refused:
        validate_manifest(manifest)
    return refused.value.problems


def test_the_shipped_manifests_pass():
    assert [d["kind"] for d in validate_manifest(WEB_MANIFEST)] == ["Deployment", "Service"]
    for service in SERVICES:
        validate_manifest(service["manifest"])


def test_it_refuses_a_schema_error_with_document_path_and_line(admin):
    manifest = WEB_MANIFEST.replace("replicas: ${replicas}", 'replicas: "three"')
    [message] = refusal(admin, manifest)
    assert message == (f"manifest: document 1, line {line_of(manifest, 'replicas:')}, spec.replicas: "
                       "'three' is not of type 'integer'")


def test_it_refuses_an_unknown_field_at_its_own_line(admin):
    manifest = WEB_MANIFEST.replace("          readinessProbe:", "          readynessProbe:")
    [message] = refusal(admin, manifest)
    assert message.startswith(f"manifest: document 1, line {line_of(manifest, 'readynessProbe')}, "
                              "spec.template.spec.containers[0].readynessProbe: unknown field 'readynessProbe'")


def test_it_names_the_document_of_the_problem():
    manifest = WEB_MANIFEST.replace("    - port: 80", "    - port: eighty")
    [problem] = problems_of(manifest)
    assert problem["document"] == 2
    assert problem["path"] == "spec.ports[0].port"
    assert problem["line"] == line_of(manifest, "port: eighty")


def test_it_refuses_yaml_syntax_errors_with_line_and_column(admin):
    manifest = WEB_MANIFEST.replace("      app: ${service}\n  template:", "      app: [${service}\n  template:")
    [message] = refusal(admin, manifest)
    assert message.startswith("manifest: line ") and "column" in message and "not valid YAML" in message


def env_problems(manifest, **env_fields):
    documents = validate_manifest(manifest)  # saving accepts it: the environment decides
    env_fields.setdefault("tier", "development")
    return environment_policy_problems(documents, Environment(slug="dev", **env_fields))


def test_a_container_without_resources_is_refused_where_no_limit_range_defaults_them(admin):
    manifest = WEB_MANIFEST_WITHOUT_RESOURCES
    create_service(admin, {"name": "web", "manifest": manifest})  # saved: environments decide
    [message] = env_problems(manifest)
    assert message == ("document 1 (Deployment svc), spec.template.spec.containers[0].resources: container 'svc' must "
                       "set resources.requests.cpu, resources.requests.memory, resources.limits.cpu, "
                       "resources.limits.memory: Gantry requires CPU and memory requests and limits on every container "
                       "(environment dev has no LimitRange defaults for them; create it from a template that sets "
                       "some, or set them in the manifest)")


def test_a_container_without_resources_is_accepted_where_the_template_limit_range_defaults_them():
    from environments.template_defaults import CONTAINER_LIMITS

    manifest = WEB_MANIFEST_WITHOUT_RESOURCES
    assert env_problems(manifest, guardrails={"limit_range": CONTAINER_LIMITS}) == []
    only_limits = {"default": {"cpu": "500m", "memory": "512Mi"}}
    [message] = env_problems(manifest, guardrails={"limit_range": only_limits})
    assert "must set resources.requests.cpu, resources.requests.memory:" in message


def test_it_names_the_one_missing_limit():
    manifest = WEB_MANIFEST.replace('              cpu: "1"\n', "")
    [problem] = env_problems(manifest)
    assert "spec.template.spec.containers[0].resources" in problem
    assert "must set resources.limits.cpu:" in problem


def test_it_checks_init_containers_too():
    manifest = WEB_MANIFEST.replace("      containers:\n", "      initContainers:\n        - name: migrate\n"
                                    "          image: ${image}\n      containers:\n")
    [problem] = env_problems(manifest)
    assert "spec.template.spec.initContainers[0].resources" in problem
    assert "container 'migrate'" in problem


def test_it_refuses_secret_values():
    manifest = WEB_MANIFEST + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n"
    [problem] = problems_of(manifest)
    assert problem["document"] == 3 and problem["path"] == "stringData"
    assert "Secret values do not belong in a manifest" in problem["message"]


def test_it_refuses_kinds_gantry_does_not_deploy():
    crd = "---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: web\nspec: {}\n"
    [problem] = problems_of(WEB_MANIFEST + crd)
    assert problem["document"] == 3 and "Gantry does not deploy ServiceMonitor objects" in problem["message"]
    namespace = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n"
    [problem] = problems_of(WEB_MANIFEST + namespace)
    assert "namespaced objects only" in problem["message"]


def test_it_reports_every_document_problem_at_once():
    manifest = (WEB_MANIFEST.replace("    - port: 80", "    - port: eighty")
                + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n")
    assert [(p["document"], p["path"]) for p in problems_of(manifest)] == [
        (2, "spec.ports[0].port"), (3, "stringData")]


def test_an_edit_with_a_bad_manifest_changes_nothing(admin, make_service):
    service = make_service("web")
    with pytest.raises(InvalidInput):
        update_service(admin, service, {"manifest": WEB_MANIFEST.replace("    - port: 80", "    - port: eighty")})
    service.refresh_from_db()
    assert service.manifest == WEB_MANIFEST


@pytest.mark.parametrize("tier, image, refused", [
    ("production", "registry.example.com/web:latest", "uses the tag 'latest'"),
    ("staging", "registry.example.com:5000/web", "has no tag and no digest"),
    ("production", "registry.example.com/web:1.4.2", None),
    ("production", "registry.example.com/web@sha256:" + "0" * 64, None),
    ("production", "registry.example.com/web:latest@sha256:" + "0" * 64, None),
    ("development", "registry.example.com/web:latest", None),
    ("preview", "web", None),
])
def test_protected_tiers_run_only_pinned_images(tier, image, refused):
    documents = validate_manifest(WEB_MANIFEST)
    documents[0]["spec"]["template"]["spec"]["containers"][0]["image"] = image
    problems = environment_policy_problems(documents, Environment(slug="env", tier=tier))
    if refused is None:
        assert problems == []
    else:
        [problem] = problems
        assert refused in problem and image in problem and "spec.template.spec.containers[0]" in problem
