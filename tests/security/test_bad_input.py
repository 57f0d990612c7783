"""Hostile input is a 400 with a `detail` (or the audited 403 when the role is missing), never a 500
or a stalled worker (issue #7, items 6, 7 and 10)."""
import json

import pytest
from django.test import Client

from deployments.models import Release, Service
from environments.models import Cluster, Environment
from portal.audit.models import AuditEvent
from tests.fixtures_data import WEB_MANIFEST

pytestmark = pytest.mark.django_db

BILLION_LAUGHS = "\n".join(["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
                           + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
                              for i in range(8)])
DEEP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: " + "[" * 600 + "]" * 600 + "\n"
MANY = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n" for i in range(15000))


@pytest.mark.parametrize("manifest,words", [(BILLION_LAUGHS, "aliases"), (DEEP, "nesting deeper"),
                                            (MANY, "bytes of YAML"), (WEB_MANIFEST * 1 + "---\n" * 150, None)])
def test_yaml_bombs_are_refused(api, admin, manifest, words):
    response = api(admin).post("/api/v1/services", {"name": "bomb", "manifest": manifest})
    assert response.status_code == 400, response.content[:300]
    if words:
        assert words in str(response.json()["detail"])
    assert not Service.objects.exists()


def test_too_many_documents_are_refused(api, admin):
    manifest = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n" for i in range(101))
    response = api(admin).post("/api/v1/services", {"name": "many", "manifest": manifest})
    assert response.status_code == 400
    assert "more than 100 YAML documents" in str(response.json()["detail"])


def test_a_kubeconfig_bomb_is_refused(api, admin):
    response = api(admin).post("/api/v1/clusters", {"name": "kc", "kubeconfig": BILLION_LAUGHS})
    assert response.status_code == 400
    assert "aliases" in str(response.json()["detail"])
    assert not Cluster.objects.exists()


@pytest.mark.parametrize("char", ["\x07", "\x00", "\ud800", "\x1b[31m"])
def test_control_characters_in_a_manifest_are_a_400(api, admin, char):
    manifest = WEB_MANIFEST.replace("APP_ENV", f"APP{char}ENV")
    response = api(admin).post("/api/v1/services", {"name": "web", "manifest": manifest})
    assert response.status_code == 400, response.content
    assert "manifest" in str(response.json()["detail"])


@pytest.mark.parametrize("path", ["/api/v1/deployments?service=%00", "/api/v1/releases?service=%00",
                                  "/api/v1/audit?actor=%00", "/api/v1/jobs?kind=%00", "/api/v1/environments?tier=%00",
                                  "/api/v1/services?team=%07", "/api/v1/deployments?state=a%00b"])
def test_nul_bytes_in_api_filters_are_a_400(api, admin, path):
    response = api(admin).get(path)
    assert response.status_code == 400, response.content
    assert "NUL" in str(response.json()["detail"]) or "character" in str(response.json()["detail"])


@pytest.mark.parametrize("path", ["/api/v1/services/a%00b", "/api/v1/environments/a%00b", "/api/v1/clusters/a%00b",
                                  "/api/v1/services/a%1bb"])
def test_nul_bytes_in_api_paths_name_nothing(api, admin, path):
    response = api(admin).get(path)
    assert response.status_code == 404, response.content
    assert "detail" in response.json()


@pytest.mark.parametrize("path", ["/deployments/?service=%00", "/audit/?actor=%00", "/releases/?service=%00",
                                  "/jobs/?kind=%00", "/environments/?tier=%00"])
def test_nul_bytes_in_page_filters_are_a_400(client, admin, path):
    client.force_login(admin)
    response = client.get(path)
    assert response.status_code == 400
    assert b"NUL" in response.content


def test_a_release_with_nul_bytes_is_a_400_for_a_deployer(api, deployer, make_service):
    make_service("web")
    for field in ("service", "version", "image", "notes", "git_sha"):
        data = {"service": "web", "version": "1.0.0", "image": "registry.example.com/web:1"} | {field: "we\x00b"}
        response = api(deployer).post("/api/v1/releases", data)
        assert response.status_code == 400, (field, response.content)
        assert field in str(response.json()["detail"])
    assert not Release.objects.exists()


def test_a_release_with_nul_bytes_is_an_audited_403_without_the_role(api, viewer, make_service):
    make_service("web")
    response = api(viewer).post("/api/v1/releases", {"service": "w\x00eb", "version": "1\x00",
                                                     "image": "x\ud800", "notes": "\x00"})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="release.create", outcome="denied", actor="vic").exists()


@pytest.mark.parametrize("name", ["\ud800", "Team\x00A", "Pay\u202eroll", "A\u200bB"])
def test_unsafe_characters_in_names_are_a_400(api, admin, name):
    response = api(admin).post("/api/v1/environments", {"name": name, "tier": "development", "slug": "ok-env"})
    assert response.status_code == 400, response.content
    assert "name" in str(response.json()["detail"])
    assert not Environment.objects.exists()


def test_a_lone_surrogate_in_a_json_body_is_a_400_for_every_text_field(api, admin, make_service):
    make_service("web")
    body = json.dumps({"service": "web", "version": "1.0.0", "image": "registry.example.com/web:1",
                       "notes": "\ud800"})
    response = api(admin).client.post("/api/v1/releases", body, content_type="application/json",
                                      **api(admin)._headers())
    assert response.status_code == 400
    assert "notes" in str(response.json()["detail"])


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "1\x00", "99999999999999999999999"])
def test_an_odd_release_number_on_the_request_page_is_a_400(client, deployer, make_env, value):
    make_env("dev")
    client.force_login(deployer)
    response = client.post("/deployments/new/", {"release": value, "environment": "dev"})
    assert response.status_code == 400
    assert b"release" in response.content


def test_an_unknown_api_path_answers_json_to_a_post_with_a_token(api, viewer):
    token_client = api(viewer)
    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post("/api/v1/no-such-thing", {}, content_type="application/json",
                                **token_client._headers())
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
