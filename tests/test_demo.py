"""The README's first command: `manage.py demo` sets everything up on SQLite and seeds a usable demo."""
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from portal.throwaway import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_seeds_environments_services_and_a_deployment_history(tmp_path):
    database = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"DEBUG": "1", "DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": "portal.settings"})
    result = subprocess.run(
        [sys.executable, "manage.py", "demo", "--seed-only", "--password", "demo-pass-42",
         "--port", str(free_port()), "--sandbox-port", str(free_port()), "--redis-port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Password: demo-pass-42" in result.stdout
    for step in ("Applying migrations", "Starting the sandbox cluster", "Seeding the demo data"):  # steps, timed
        assert re.search(rf"\[\s*\d+\.\ds\] {step}", result.stdout), result.stdout
    assert "rita" in result.stdout and "admin" in result.stdout
    db = sqlite3.connect(database)
    environments = dict(db.execute("SELECT slug, tier FROM environments_environment"))
    assert environments == {"dev": "development", "staging": "staging", "production": "production",
                            "pr-481-checkout": "preview"}
    services = {row[0] for row in db.execute("SELECT name FROM deployments_service")}
    assert services == {"web", "api", "worker"}
    pending = db.execute("SELECT count(*) FROM deployments_deployment WHERE state = 'pending_approval'").fetchone()[0]
    assert pending == 1
    assert db.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] > 20
    # production's shop database (a throwaway PostgreSQL of the demo) backed up to the local store, drilled
    assert "Backups: production/shop-db backed up to file://" in result.stdout, result.stdout
    assert db.execute("SELECT state, trigger FROM backups_backup").fetchall() == [("succeeded", "manual")]
    assert db.execute("SELECT state FROM backups_drill").fetchall() == [("passed",)]

    # The demo's story on its own database (SQLite, not the suite's PostgreSQL): a health probe is recorded
    # (the sandbox has stopped, so every service is found down), and rita's dashboard, board updates and
    # approvals inbox answer.
    pages = subprocess.run([sys.executable, "-c", DEMO_PAGES], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
    assert pages.returncode == 0, pages.stdout + pages.stderr[-3000:]
    assert pages.stdout.split() == ["200", "200", "200", "200"], pages.stdout + pages.stderr[-3000:]
    assert db.execute("SELECT count(*) FROM monitoring_healthminute WHERE checks > 0").fetchone()[0] > 0


DEMO_PAGES = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from deployments.monitoring.probing import probe_environments
from environments.models import Environment

probe_environments(list(Environment.objects.values_list("pk", flat=True)))
client = Client()
client.force_login(get_user_model().objects.get(username="rita"))
for url in ("/", "/board/updates/", "/approvals/", "/api/v1/approvals"):
    print(client.get(url, HTTP_HOST="127.0.0.1").status_code)
"""
