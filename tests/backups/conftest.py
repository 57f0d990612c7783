"""Real parts for backup tests: a scratch PostgreSQL database filled by the test, moto's S3 server over
HTTP, and a local directory. Every scratch database has a unique name and is dropped afterwards."""
import itertools
import os

import psycopg
import pytest
from django.db import connection

from portal.throwaway import as_postgres_user, free_port

_counter = itertools.count()


def server_dsn(dbname):
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{dbname}"


def admin_connect():
    return psycopg.connect(server_dsn("postgres"), autocommit=True)


def unique_name(prefix):
    return f"gantry_{prefix}_{os.getpid()}_{next(_counter)}"


def drop_database(name):
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(name):
    with admin_connect() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


FILL_SQL = """
CREATE SCHEMA sales;
CREATE SCHEMA inventory;
CREATE TABLE public.customers (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE sales.orders (id serial PRIMARY KEY, customer_id int REFERENCES public.customers(id),
                           total numeric(10, 2), placed_at timestamptz DEFAULT now());
CREATE TABLE inventory.items (sku text PRIMARY KEY, stock int, photo oid);
CREATE TABLE inventory.empty_table (id int);
INSERT INTO public.customers (name, email) SELECT 'customer ' || g, 'c' || g || '@example.com'
    FROM generate_series(1, 2000) g;
INSERT INTO sales.orders (customer_id, total) SELECT 1 + (g % 2000), (g % 977) / 3.0 FROM generate_series(1, 5000) g;
INSERT INTO inventory.items (sku, stock, photo) SELECT 'SKU-' || g, g % 50,
    CASE WHEN g <= 5 THEN lo_from_bytea(0, convert_to(repeat('photo bytes ' || g, 2000), 'UTF8')) END
    FROM generate_series(1, 1200) g;
"""

TABLES = {("public", "customers"): 2000, ("sales", "orders"): 5000, ("inventory", "items"): 1200,
          ("inventory", "empty_table"): 0}


def row_counts(dbname):
    with psycopg.connect(server_dsn(dbname)) as conn:
        return {(s, t): conn.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0] for s, t in TABLES}


def large_object_count(dbname):
    with psycopg.connect(server_dsn(dbname)) as conn:
        return conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]


@pytest.fixture
def source_db():
    """A database with three schemas, a few thousand rows and five large objects; yields its DSN."""
    name = unique_name("src")
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(server_dsn(name), autocommit=True) as conn:
            conn.execute(FILL_SQL)
        yield server_dsn(name)
    finally:
        drop_database(name)


@pytest.fixture
def scratch_databases():
    """Names the test restores into; dropped afterwards."""
    names = []

    def make(prefix="restore"):
        names.append(unique_name(prefix))
        return names[-1]

    yield make
    for name in names:
        drop_database(name)


S3_KEYS = {"access_key_id": "testing-key", "secret_access_key": "testing-secret"}


@pytest.fixture
def s3_bucket(moto_endpoint):
    """A fresh bucket on the moto server; yields (destination dict for a target, S3Store)."""
    from portal.storage import S3Store

    bucket = f"backups-{os.getpid()}-{next(_counter)}"
    store = S3Store(bucket, endpoint_url=moto_endpoint, credentials=S3_KEYS)
    store.client.create_bucket(Bucket=bucket)
    destination = {"kind": "s3", "bucket": bucket, "prefix": "nightly", "endpoint_url": moto_endpoint,
                   "region": "us-east-1", **S3_KEYS}
    yield destination, store


@pytest.fixture
def prod(make_env):
    return make_env("prod", tier="production", required_approvals=1, prevent_self_approval=True)


@pytest.fixture
def staging(make_env):
    return make_env("staging", tier="staging")


@pytest.fixture
def make_target(admin):
    from environments.backups.services import create_target

    def factory(environment, dsn, destination, **extra):
        data = {"name": extra.pop("name", "main-db"), "dsn": dsn, "destination": destination, **extra}
        return create_target(admin, environment, data)

    return factory


def run_jobs_of(row):
    """Run the row's job the way a worker does."""
    from portal.jobs.services import run_job

    run_job(str(row.job_id))
    row.refresh_from_db()
    return row


@pytest.fixture(scope="session")
def password_server():
    """A throwaway PostgreSQL of our own that checks passwords (the shared one trusts everyone).
    Yields (host, port, user, password)."""
    import shutil
    import subprocess
    import tempfile

    from portal.throwaway import pg_bindir

    bindir = pg_bindir()
    datadir = tempfile.mkdtemp(prefix="gantry-pgpw-")
    pwfile = os.path.join(datadir, "..", f"pw-{os.getpid()}")
    with open(pwfile, "w") as handle:
        handle.write("right-password\n")
    port = free_port()
    as_postgres = as_postgres_user()
    if as_postgres:
        shutil.chown(datadir, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    subprocess.run(as_postgres + [f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "--auth=scram-sha-256",
                                  f"--pwfile={pwfile}", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
    os.unlink(pwfile)
    subprocess.run(as_postgres + [f"{bindir}/pg_ctl", "-D", datadir, "-w", "-l", f"{datadir}/log", "-o",
                                  f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        yield "127.0.0.1", port, "postgres", "right-password"
    finally:
        subprocess.run(as_postgres + [f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(datadir, ignore_errors=True)
