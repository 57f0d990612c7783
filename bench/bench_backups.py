"""Backup throughput and worker memory: a generated database backed up by the real backup job code
(environments.backups.runner.run_backup) to the local store and to S3 (moto server over HTTP), next to
plain `pg_dump -Fc > /dev/null` on the same database in the same run.

    .venv/bin/python bench/bench_backups.py                 # 1024 MB of table data (the issue's size)
    .venv/bin/python bench/bench_backups.py --size-mb 200   # smaller, on a busy machine
    .venv/bin/python bench/bench_backups.py --keep          # keep the generated database for another run

Goals (printed, never asserted): throughput >= 80 % of plain pg_dump; worker peak RSS flat (< 150 MB)
whatever the size. Each backup runs in its own child process (a stand-in worker: Django set up on a
throwaway SQLite file for the Backup rows); its peak RSS is its own `ru_maxrss`.

Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres) or BENCH_PG (a server URL without database).
The generated database `gantry_bench_backups_<MB>` is dropped at the end unless --keep.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # portal.throwaway, for the moto server
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
ROW_BYTES = 330  # roughly, per generated row (id + 320 characters of hex text)


def psql(database, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{SERVER}/{database}", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def table_bytes(database):
    out = subprocess.run(["psql", "-At", f"{SERVER}/{database}", "-c",
                          "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                          "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bench' AND c.relkind = 'r'"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return int(out or 0)


def generate(database, size_mb):
    exists = subprocess.run(["psql", "-At", f"{SERVER}/postgres", "-c",
                             f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],
                            capture_output=True, text=True).stdout.strip()
    if exists and table_bytes(database) >= size_mb * 1024 * 1024 * 0.95:
        return False
    psql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    psql("postgres", f'CREATE DATABASE "{database}"')
    psql(database, "CREATE SCHEMA bench; CREATE TABLE bench.events (id bigint, payload text); "
                   "CREATE TABLE bench.accounts (id bigint PRIMARY KEY, name text, balance numeric)")
    psql(database, "INSERT INTO bench.accounts SELECT g, 'account ' || g, g % 1000 FROM generate_series(1, 100000) g")
    rows = int(size_mb * 1024 * 1024 / ROW_BYTES)
    batch = 500_000
    for start in range(1, rows + 1, batch):
        end = min(rows, start + batch - 1)
        # md5 text is ~2:1 compressible, like ordinary application data
        psql(database, f"INSERT INTO bench.events SELECT g, md5(g::text) || md5((g * 3)::text) || md5((g * 7)::text) "
                       f"|| md5((g * 11)::text) || md5((g * 13)::text) || md5((g * 17)::text) "
                       f"|| md5((g * 19)::text) || md5((g * 23)::text) || md5((g * 29)::text) "
                       f"|| md5((g * 31)::text) FROM generate_series({start}, {end}) g")
    return True


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plain_dump(database):
    """(wall seconds, pg_dump's CPU seconds) of `pg_dump -Fc > /dev/null`."""
    start, cpu = time.monotonic(), _children_cpu()
    with open(os.devnull, "wb") as sink:
        proc = subprocess.run(["pg_dump", "--format=custom", "--dbname", f"{SERVER}/{database}"], stdout=sink)
    seconds = time.monotonic() - start
    if proc.returncode:
        raise SystemExit("plain pg_dump failed")
    return seconds, _children_cpu() - cpu


CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
os.environ.update(DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="1", GANTRY_LOG_LEVEL="ERROR",
                  DATABASE_URL="sqlite:///" + sys.argv[2])
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from environments.models import Environment
from environments.backups.models import Backup, BackupTarget
from environments.backups import runner
from portal.jobs.models import Job
from portal.jobs.services import JobLog
env = Environment.objects.create(slug="bench", name="Bench", tier="staging", namespace="bench", status="ready")
destination = json.loads(sys.argv[4])
credentials = destination.pop("credentials", None)
target = BackupTarget(environment=env, name="bench-db", destination=destination)
target.dsn = sys.argv[3]
target.credentials = credentials
target.save()
job = Job.objects.create(kind="backup.run", queue="backups", state="running")
backup = Backup.objects.create(target=target, job=job)
def cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
runner.store_for(target)  # boto3 imported and a client made, as in a worker that already ran a backup
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Django, migrations, boto3 loaded
start, own, tools = time.monotonic(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
result = runner.run_backup(backup, JobLog(job))
seconds = time.monotonic() - start
print(json.dumps({"seconds": seconds, "size": result["size_bytes"], "worker_cpu": cpu(resource.RUSAGE_SELF) - own,
                  "pg_dump_cpu": cpu(resource.RUSAGE_CHILDREN) - tools,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": before}))
"""


def backup_in_child(database, destination):
    with tempfile.TemporaryDirectory(prefix="bench-backups-") as workdir:
        out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), f"{workdir}/rows.sqlite3",
                              f"{SERVER}/{database}", json.dumps(destination)],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"the backup child failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def moto_server():
    import logging

    from portal.throwaway import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log is not a figure

    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="table data to generate (default 1024)")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args(argv)
    database = f"gantry_bench_backups_{args.size_mb}"
    clock = time.monotonic()
    made = generate(database, args.size_mb)
    size = table_bytes(database)
    print(f"database {database}: {size / 2**20:.0f} MiB of tables on disk "
          f"({'generated in %.0f s' % (time.monotonic() - clock) if made else 'reused'})")

    plains = [plain_dump(database)]
    print(f"plain pg_dump -Fc > /dev/null: {plains[0][0]:.1f} s (pg_dump CPU {plains[0][1]:.1f} s)")
    store_dir = tempfile.mkdtemp(prefix="bench-backups-store-")
    rows = []
    try:
        if not args.skip_local:
            local = backup_in_child(database, {"kind": "local", "path": store_dir})
            rows.append(("local store", local))
            print(f"local store: {local['seconds']:.1f} s")
            shutil.rmtree(store_dir, ignore_errors=True)
        if not args.skip_s3:
            server, endpoint = moto_server()
            try:
                import boto3  # the bench creates the bucket itself; Gantry's code goes through portal.storage

                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                             aws_secret_access_key="bench").create_bucket(Bucket="bench")
                moto_cpu = _own_cpu()
                s3 = backup_in_child(database, {"kind": "s3", "bucket": "bench", "prefix": "", "endpoint_url": endpoint,
                                                "region": "us-east-1", "credentials": {"access_key_id": "bench",
                                                                                       "secret_access_key": "bench"}})
                s3["moto_cpu"] = _own_cpu() - moto_cpu  # this process only serves moto meanwhile
                rows.append(("S3 (moto over HTTP)", s3))
                print(f"S3: {s3['seconds']:.1f} s")
            finally:
                server.stop()
        # plain pg_dump again after the backups: the machine's load drifts, the ratio uses the mean of both
        plains.append(plain_dump(database))
        print(f"plain pg_dump -Fc > /dev/null again: {plains[1][0]:.1f} s (pg_dump CPU {plains[1][1]:.1f} s)")
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
        if not args.keep:
            psql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    plain = sum(p[0] for p in plains) / len(plains)
    plain_cpu = sum(p[1] for p in plains) / len(plains)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"{'destination':<22} {'seconds':>8} {'dump MiB':>9} {'MiB/s of tables':>16} {'vs plain':>9} "
          f"{'pg_dump CPU s':>14} {'worker CPU s':>13} {'worker peak RSS':>16}")
    print(f"{'plain pg_dump (mean)':<22} {plain:>8.1f} {'':>9} {size / 2**20 / plain:>16.1f} {'100 %':>9} "
          f"{plain_cpu:>14.1f} {'':>13} {'':>16}")
    for name, row in rows:
        extra = f"  (moto server CPU {row['moto_cpu']:.1f} s)" if "moto_cpu" in row else ""
        print(f"{name:<22} {row['seconds']:>8.1f} {row['size'] / 2**20:>9.1f} {size / 2**20 / row['seconds']:>16.1f} "
              f"{100 * plain / row['seconds']:>7.0f} % {row['pg_dump_cpu']:>14.1f} {row['worker_cpu']:>13.1f} "
              f"{row['peak_rss_mb']:>13.0f} MB (before the backup {row['rss_before_mb']:.0f} MB){extra}")
    print("goals: >= 80 % of plain pg_dump; worker peak RSS < 150 MB and flat whatever the size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
