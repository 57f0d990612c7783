"""Every /api/v1 operation declares what it answers (issue #7): a real response schema per success
status, no free-form object; the schema is exactly what the serializer returns (an undeclared key is
an error, never silently dropped), and the answers keep the contract's names and formats."""
import pydantic
import pytest
from django.test import Client

from environments.models import Cluster, Environment

pytestmark = pytest.mark.django_db


def _document():
    return Client().get("/api/v1/openapi.json").json()


def _resolve(document, schema):
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _closed_objects(document, schema):
    """The object schemas an answer may be (one, or each of a oneOf / anyOf); [] if it is not objects."""
    schema = _resolve(document, schema)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return [s for option in schema[key] for s in _closed_objects(document, option)]
    return [schema] if schema.get("type") == "object" else []


def _free_form(document, schema):
    """Why `schema` is not a declared, closed object (or list of them); None when it is."""
    schema = _resolve(document, schema)
    if schema.get("type") == "array":
        return _free_form(document, schema.get("items") or {})
    objects = _closed_objects(document, schema)
    if not objects:
        return f"not an object schema: {schema}"
    for obj in objects:
        if not obj.get("properties"):
            return f"an object without declared properties: {obj.get('title')}"
        if obj.get("additionalProperties") is not False:
            return f"an object that allows undeclared keys: {obj.get('title')}"
    return None


def test_no_operation_answers_a_free_form_object():
    document = _document()
    problems, checked = [], 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if not str(status).startswith("2"):
                    continue
                schema = (response.get("content") or {}).get("application/json", {}).get("schema")
                if schema is None:
                    continue  # 204, a file download or an export stream: no JSON body
                checked += 1
                why = _free_form(document, schema)
                if why:
                    problems.append(f"{method.upper()} {path} {status}: {why}")
    assert checked >= 50, checked  # the walk found the operations
    assert not problems, "\n".join(problems)


def test_the_success_statuses_carry_their_schemas():
    document = _document()
    paths = document["paths"]
    created = paths["/api/v1/environments"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/EnvironmentOut"}
    inbox = paths["/api/v1/approvals"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(inbox["items"]["discriminator"]["mapping"]) == {"deploy", "rollback", "environment", "restore"}
    # names that are not Python identifiers are documented as the API writes them
    history = _resolve(document, {"$ref": "#/components/schemas/HealthHistoryOut"})
    assert set(_resolve(document, history["properties"]["availability"])["properties"]) == {"24h", "7d"}
    change = _resolve(document, {"$ref": "#/components/schemas/HealthChangeOut"})
    assert "from" in change["properties"] and "from_status" not in change["properties"]


def test_a_key_the_schema_does_not_declare_is_an_error_not_dropped(api, admin, monkeypatch):
    from environments import clusters_api
    from environments.serializers import cluster_out

    Cluster.objects.create(name="c1", mode="server", server="https://k8s.example.com")
    monkeypatch.setattr(clusters_api, "cluster_out", lambda cluster: cluster_out(cluster) | {"token": "secret"})
    with pytest.raises(pydantic.ValidationError, match="token"):
        api(admin).get("/api/v1/clusters/c1")


def test_answers_keep_their_names_and_formats(api, admin, make_env, make_service):
    env = make_env("dev")
    make_service("web")
    body = api(admin).get("/api/v1/environments/dev").json()
    assert body["created_at"] == Environment.objects.get(pk=env.pk).created_at.isoformat()  # "+00:00", not "Z"
    assert body["verification"]["rules"] and body["freeze"] is None
    history = api(admin).get("/api/v1/environments/dev/services/web/health/history").json()
    assert history == {"checks": [], "changes": [], "availability": {"24h": None, "7d": None}}  # by alias
    # a key that only some answers have is left out, not sent as null
    gone = api(admin).delete("/api/v1/environments/dev")
    assert gone.status_code == 202, gone.content
    assert "job" not in gone.json() and gone.json()["status"] == "deleted"


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_request_body_is_a_declared_input_schema():
    """Issue #8: each write operation takes one declared schema (portal.schema_types.InputSchema), the
    one its service validates with, page and API alike; no hand-rolled body."""
    from portal.schema_types import InputSchema

    declared = {cls.__name__ for cls in _subclasses(InputSchema)}
    document = _document()
    bodies, problems = 0, []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            if body is None:
                continue
            refs = [body] + body.get("anyOf", [])
            names = [r["$ref"].rsplit("/", 1)[1] for r in refs if "$ref" in r]
            bodies += 1
            if not names or any(name not in declared for name in names):
                problems.append(f"{method.upper()} {path}: {names or body}")
    assert bodies >= 20, bodies
    assert not problems, "\n".join(problems)
