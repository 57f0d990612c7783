"""PostgreSQL down: pages and the API answer 503 with Retry-After (not a 500 with a traceback), the
liveness probe stays up, readiness names the database, and the next request after it is back works."""
import subprocess
import sys
import time

import pytest
import requests
from django.test import Client

from portal.accounts.services import create_api_token
from portal.throwaway import free_port, port_open
from tests.faults.test_database_restart import copy_test_database
from tests.workers import ROOT, wait_for
from tests.workers import worker_env as base_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_pages_and_api_answer_503_while_postgres_is_down_and_work_again_when_it_is_back(admin, throwaway_pg):
    browser = Client()
    browser.force_login(admin)
    session = {"sessionid": browser.cookies["sessionid"].value}
    token = {"Authorization": f"Bearer {create_api_token(admin, name='outage', operator='test')}"}
    url = copy_test_database(throwaway_pg)  # the session and the token go along

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1",
                               "--timeout", "60"], cwd=ROOT, env=base_env(DATABASE_URL=url),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: port_open(port), timeout=60), "gunicorn did not start"
        assert requests.get(f"{base}/environments/", cookies=session, timeout=30).status_code == 200

        throwaway_pg.stop()
        page = requests.get(f"{base}/environments/", cookies=session, timeout=30)
        assert page.status_code == 503, page.text[:500]
        assert "database is not answering" in page.text and "Nothing was changed" in page.text
        assert page.headers["Retry-After"] == "5"
        api = requests.post(f"{base}/api/v1/environments", json={"name": "x", "tier": "preview"}, headers=token,
                            timeout=30)
        assert api.status_code == 503 and "database is not answering" in api.json()["detail"]
        assert requests.get(f"{base}/healthz", timeout=30).status_code == 200  # alive: no restart loop
        ready = requests.get(f"{base}/readyz?need=database", timeout=30)
        assert ready.status_code == 503 and "database" in ready.json()["failing"]

        throwaway_pg.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the first request after the restart may still see the dead socket
            back = requests.get(f"{base}/environments/", cookies=session, timeout=30)
            if back.status_code == 200:
                break
            time.sleep(0.5)
        assert back.status_code == 200, back.text[:500]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "Traceback" not in output, output[-3000:]
    assert "database unavailable GET /environments/" in output
