"""Schemathesis against the live test server, as an admin and as a viewer: no 5xx, no response that
breaks the OpenAPI document (issue #7). A fixed, small budget of examples per operation."""
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.conftest import token_for  # noqa: E402
from tests.fixtures_data import WEB_MANIFEST  # noqa: E402

EXAMPLES = 2
SKIP = {("DELETE", "/api/v1/environments/{slug}")}  # would tear down the fixture the other operations use


@pytest.fixture
def seeded(transactional_db, make_user, make_env, make_service):
    from deployments.releases import register_release

    from deployments import actions
    from environments.models import Cluster

    admin = make_user("fuzz-admin", "admin")
    viewer = make_user("fuzz-viewer", "viewer")
    make_env("dev")
    make_service("web", manifest=WEB_MANIFEST)
    Cluster.objects.create(name="c1", mode="server", server="https://k8s.example.com")
    release = register_release(admin, {"service": "web", "version": "1.0.0", "image": "registry.example.com/web:1.0.0"})
    deployment = actions.request_deployment(admin, {"release": release.pk, "environment": "dev"})
    # Path parameters that name what exists, as explicit examples: the fuzzer then also reaches the
    # answers of single objects (and validates their bodies), not only 404s for made-up names.
    examples = {"slug": "dev", "service": "web", "release_id": release.pk, "deployment_id": deployment.pk,
                "job_id": str(deployment.job_id) if deployment.job_id else None,
                ("/api/v1/services/", "name"): "web", ("/api/v1/clusters/", "name"): "c1"}
    return {"admin": token_for(admin), "viewer": token_for(viewer), "examples": examples}


def _with_examples(document, examples):
    for path, item in document["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    continue
                by_path = [v for k, v in examples.items() if isinstance(k, tuple) and path.startswith(k[0])
                           and k[1] == parameter["name"]]
                value = by_path[0] if by_path else examples.get(parameter["name"])
                if value is not None:
                    parameter["schema"] = dict(parameter["schema"], example=value)
    return document


def _fuzz(base_url, token, examples):
    from django.test import Client

    document = Client().get("/api/v1/openapi.json").json()  # the same document the live server serves
    document = _with_examples(document, examples)
    schema = schemathesis.openapi.from_dict(document)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                             phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                   checks=[not_a_server_error, response_schema_conformance], timeout=30)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    return failures


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_the_api_survives_a_fuzzer(live_server, seeded, role):
    failures = _fuzz(live_server.url, seeded[role], seeded["examples"])
    assert not failures, "\n\n".join(failures)
