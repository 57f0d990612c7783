"""Browser journey: an admin runs a backup from the Backups page, watches it finish (live, with a real
worker), and sees the RPO badge turn green on the page and on the environment page."""
import django_rq
import pytest
from playwright.sync_api import expect

from environments.backups.services import create_target
from tests.backups.conftest import FILL_SQL, admin_connect, drop_database, server_dsn, unique_name
from tests.workers import start_worker

from .conftest import login


@pytest.fixture
def shop_db():
    import psycopg

    name = unique_name("e2e")
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(server_dsn(name), autocommit=True) as conn:
        conn.execute(FILL_SQL)
    yield server_dsn(name)
    drop_database(name)


@pytest.mark.django_db(transaction=True)
def test_an_admin_backs_up_from_the_page_and_the_rpo_badge_turns_green(page, live_server, admin, make_env, shop_db,
                                                                       tmp_path):
    django_rq.get_connection("backups").flushdb()
    staging = make_env("staging", tier="staging")
    create_target(admin, staging, {"name": "shop-db", "dsn": shop_db, "rpo_minutes": 60,
                                   "destination": {"kind": "local", "path": str(tmp_path)}})
    worker = start_worker("backups")
    try:
        login(page, live_server, "ada")
        page.goto(f"{live_server.url}/environments/staging/backups/")
        badge = page.locator(".badge.rpo")
        expect(badge).to_have_text("no good backup")
        expect(badge).to_have_class("badge rpo rpo-red")

        page.get_by_role("button", name="Back up now").click()
        expect(page.get_by_role("status")).to_contain_text("queued")
        state = page.locator("tr.backup-row .badge.state").first
        expect(state).to_have_text("succeeded", timeout=90_000)  # the live fragment follows the worker
        expect(badge).to_have_class("badge rpo rpo-green")
        expect(badge).to_contain_text("within RPO: last good")
        expect(page.locator("tr.backup-row").first).to_contain_text("ada")

        page.get_by_role("link", name="Staging").first.click()
        expect(page.locator(".backup-status .badge.rpo")).to_have_class("badge rpo rpo-green")
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        django_rq.get_connection("backups").flushdb()
