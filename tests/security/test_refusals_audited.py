"""A refused read is audited like a refused write (issue #7): a logged-in user whose role does not
open a page gets the 403 page and one `access.denied` event, in the words the API uses for the same
refusal; a refusal a service already audited is not audited twice."""
import pytest

from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _denied():
    return list(AuditEvent.objects.filter(outcome="denied").order_by("seq"))


def test_a_page_the_role_does_not_open_is_an_audited_403(client, deployer):
    client.force_login(deployer)
    response = client.get("/audit/")
    assert response.status_code == 403
    [event] = _denied()
    assert (event.action, event.actor) == ("access.denied", deployer.get_username())
    assert event.detail == {"reason": "the audit log needs the global viewer (auditor) or admin role",
                            "method": "GET", "path": "/audit/"}


def test_the_page_and_the_api_refuse_in_the_same_words(client, api, deployer):
    client.force_login(deployer)
    assert client.get("/audit/").status_code == 403
    answer = api(deployer).get("/api/v1/audit")
    assert answer.status_code == 403
    page, call = _denied()
    assert page.action == call.action == "access.denied"
    assert page.detail["reason"] == call.detail["reason"] == answer.json()["detail"]
    assert call.detail["path"] == "/api/v1/audit"


def test_a_form_page_refused_on_read_is_audited(client, viewer):
    client.force_login(viewer)
    assert client.get("/releases/new/").status_code == 403
    [event] = _denied()
    assert event.action == "access.denied" and event.detail["reason"] == "registering releases needs the deployer role"


def test_a_refusal_the_service_audited_is_not_audited_again(client, api, viewer, make_service):
    make_service("web")
    client.force_login(viewer)
    page = client.post("/releases/new/", {"service": "web", "version": "1.0.0", "image": "registry.example.com/web:1"})
    assert page.status_code == 403
    call = api(viewer).post("/api/v1/releases", {"service": "web", "version": "1.0.1",
                                                  "image": "registry.example.com/web:2"})
    assert call.status_code == 403
    assert [e.action for e in _denied()] == ["release.create", "release.create"]
