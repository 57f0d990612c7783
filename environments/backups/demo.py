"""The demo's backup target: production's "shop" database, backed up into the local store, with one drill."""
import time

from environments.models import Environment

from . import services
from .models import Backup, BackupTarget, Drill

SHOP_SQL = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric(10, 2),
                     placed_at timestamptz DEFAULT now());
INSERT INTO customers (name, email) SELECT 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 500) g;
INSERT INTO orders (customer_id, total) SELECT 1 + g % 500, (g % 997) / 7.0 FROM generate_series(1, 3000) g;
"""


def _wait(model, pk, states, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = model.objects.get(pk=pk)
        if row.state in states:
            return row
        time.sleep(0.3)
    return model.objects.get(pk=pk)


def seed_backups(admin, dsn, directory):
    """Create (or point again) the target, take one backup and drill it, through the worker. Returns a line to print."""

    env = Environment.objects.get(slug="production")
    target = BackupTarget.objects.filter(environment=env, name="shop-db").first()
    data = {"dsn": dsn, "destination": {"kind": "local", "path": directory}}
    if target is None:
        target = services.create_target(admin, env, {
            "name": "shop-db", "schedule": "0 3 * * *", "timezone": "Asia/Seoul", "retention_days": 7,
            "keep_last": 1, "rpo_minutes": 1440, "rto_minutes": 240, "verify_schedule": "0 5 * * 1",
            "verify_sql": "SELECT count(*) = 3000 FROM orders", **data})
    else:
        target = services.update_target(admin, target, data)
    backup = _wait(Backup, services.start_backup(target, user=admin).pk, ("succeeded", "failed"))
    if backup.state != "succeeded":
        return f"Backups: the demo backup of production/shop-db did not finish ({backup.state}: {backup.error})"
    drill = _wait(Drill, services.start_drill(backup, user=admin).pk, ("passed", "failed"))
    return (f"Backups: production/shop-db backed up to {backup.location} ({backup.size_bytes} bytes); "
            f"restore drill {drill.state}" + (f" in {drill.restore_seconds:.1f} s" if drill.restore_seconds else ""))
