"""A refused attempt is audited (DESIGN): a 409 too. When the state of things refuses an attempt (a
version already bound to another image, a cluster still hosting environments), the API and the
pages write one `request.conflict` event in the refusal's words; a conflict a service already
audited itself is not audited twice."""
import pytest

from deployments.releases import register_release
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

OTHER_IMAGE = {"service": "web", "version": "1.4.2", "image": "registry.example.com/shop/web:other"}


def conflicts():
    return list(AuditEvent.objects.filter(action="request.conflict").order_by("seq"))


@pytest.fixture
def release(web, deployer):
    return register_release(deployer, {"service": "web", "version": "1.4.2", "image": "registry.example.com/shop/web:1.4.2"})


def test_an_api_conflict_is_audited_in_its_own_words(api, deployer, release):
    answer = api(deployer).post("/api/v1/releases", OTHER_IMAGE)
    assert answer.status_code == 409
    [event] = conflicts()
    assert (event.actor, event.outcome) == (deployer.get_username(), "denied")
    assert event.detail == {"reason": answer.json()["detail"], "method": "POST", "path": "/api/v1/releases"}


def test_a_page_conflict_is_audited_like_the_api_one(client, api, deployer, release):
    client.force_login(deployer)
    page = client.post("/releases/new/", {**OTHER_IMAGE, "notes": ""})
    assert page.status_code == 409
    answer = api(deployer).post("/api/v1/releases", OTHER_IMAGE)
    on_page, by_api = conflicts()
    assert on_page.detail["reason"] == by_api.detail["reason"] == answer.json()["detail"]
    assert on_page.detail["path"] == "/releases/new/"


def test_a_conflict_a_service_audited_is_not_audited_again(api, admin, make_env):
    from environments.models import Environment

    env = make_env("preview-1", tier="preview")
    Environment.objects.filter(pk=env.pk).update(ttl_hours=None, expires_at=None)
    answer = api(admin).post(f"/api/v1/environments/{env.slug}/extend", {"hours": 4})
    assert answer.status_code in (400, 409)
    assert AuditEvent.objects.filter(action="environment.extend", outcome="denied").count() == 1
    assert conflicts() == []
