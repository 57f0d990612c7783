"""Release fields cannot change the structure of the manifests that reach a cluster (issue #7, item 1)."""
import pytest

from deployments import rollout
from deployments.manifests import ManifestError, render, validate_manifest
from deployments.models import Release
from portal.audit.models import AuditEvent
from tests.deploy.conftest import Log, image, state_of
from tests.fixtures_data import WEB_MANIFEST

pytestmark = pytest.mark.django_db

INJECTED_SERVICE = '2"\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: pwned\nspec:\n  type: LoadBalancer\n' \
                   '  ports:\n  - port: 80\n'
CONFIG = """
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ${service}-config
data:
  APP_VERSION: "${version}"
  PLAIN_VERSION: ${version}
"""
VALUES = {"image": "registry.example.com/web:1", "service": "web", "environment": "dev", "namespace": "dev",
          "replicas": 2, "color": "blue"}


@pytest.mark.parametrize("version", [INJECTED_SERVICE, "1\n  EXTRA: \"value\"", "1.0.0\n", "1 0", "1.0\u202e",
                                     "1.0\u200b", "\u00b2", "1.0\x00", "", "-rc1", "x" * 129])
def test_a_release_version_is_one_line_of_safe_characters(api, deployer, make_service, version):
    make_service("web")
    response = api(deployer).post("/api/v1/releases", {"service": "web", "version": version,
                                                       "image": "registry.example.com/web:1"})
    assert response.status_code == 400, response.content
    assert "version" in str(response.json()["detail"])
    assert not Release.objects.exists()


@pytest.mark.parametrize("field,value", [("image", "registry.example.com/web:1\n"),
                                         ("image", "registry.example.com/web:1\n---\nkind: Service"),
                                         ("image", "registry.example.com/web:\u00b2"),
                                         ("git_sha", "3f2a9c1\n"), ("git_sha", "3f2a9c1\n---")])
def test_images_and_git_shas_refuse_a_trailing_newline(api, deployer, make_service, field, value):
    make_service("web")
    data = {"service": "web", "version": "1.0.0", "image": "registry.example.com/web:1"} | {field: value}
    response = api(deployer).post("/api/v1/releases", data)
    assert response.status_code == 400, response.content
    assert field in str(response.json()["detail"])


@pytest.mark.parametrize("version", ["1.4.2", "2026.11.30+build.7", "1.0.0-rc.1", "v3_beta"])
def test_ordinary_versions_are_still_accepted(api, deployer, make_service, version):
    make_service("web")
    response = api(deployer).post("/api/v1/releases", {"service": "web", "version": version,
                                                       "image": "registry.example.com/web:1", "git_sha": "3f2a9c1"})
    assert response.status_code == 201, response.content


def test_a_value_never_adds_a_document_or_a_key():
    for version in (INJECTED_SERVICE, '1\n  EXTRA: "value"', "x: [1]\n}: {"):
        rendered = render(WEB_MANIFEST + CONFIG, VALUES | {"version": version})
        documents = validate_manifest(WEB_MANIFEST + CONFIG)  # the template itself is fine
        import yaml

        out = [d for d in yaml.safe_load_all(rendered) if d]
        assert [(d["kind"], d["metadata"]["name"]) for d in out] == [(d["kind"], d["metadata"]["name"].replace(
            "svc", "web")) for d in documents]
        assert out[2]["data"] == {"APP_VERSION": version, "PLAIN_VERSION": version}


def test_placeholders_keep_their_types_and_work_in_flow_style():
    import yaml

    rendered = render("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${service}, labels: {r: \"${replicas}\"}}\n"
                      "data: {n: ${replicas}, cost: '$$5', v: ${version}}\n", VALUES | {"version": "1.0"})
    doc = yaml.safe_load(rendered)
    assert doc["metadata"] == {"name": "web", "labels": {"r": "2"}}
    assert doc["data"] == {"n": 2, "cost": "$5", "v": 1.0}  # as text substitution typed them


def test_an_unknown_placeholder_is_still_a_validation_error():
    with pytest.raises(ManifestError, match="unknown placeholder"):
        validate_manifest(WEB_MANIFEST.replace("${environment}", "${secret}"))


def test_an_injected_service_never_reaches_the_sandbox_cluster(deployer, make_env, cluster, make_service, sandbox):
    """A release stored before the formats were strict still cannot add an object when it is deployed."""
    from deployments.actions import request_deployment
    from portal import kube

    kube.ensure_namespace(cluster, "prod", {})
    prod = make_env("prod", tier="production", cluster=cluster, required_approvals=0)
    web = make_service("web", manifest=WEB_MANIFEST + CONFIG)
    release = Release.objects.create(service=web, version=INJECTED_SERVICE, image=image("web", "1.0.0"),
                                     created_by=deployer)
    deployment = request_deployment(deployer, {"release": release.pk, "environment": prod.slug})
    assert deployment.state == "queued"
    import yaml

    kinds = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(deployment.rendered_manifest) if d]
    assert kinds == [("Deployment", "web"), ("Service", "web"), ("ConfigMap", "web-config")]
    rollout.execute(deployment.pk, Log())
    assert state_of(deployment).state == "succeeded", state_of(deployment).error
    assert sandbox.get("services", "pwned", "prod") is None
    assert [s["metadata"]["name"] for s in kube.list_objects(cluster, "v1", "Service", "prod")] == ["web"]
    assert sandbox.get("configmaps", "web-config", "prod")["data"]["APP_VERSION"] == INJECTED_SERVICE
    assert AuditEvent.objects.filter(action="deployment.succeeded").exists()
