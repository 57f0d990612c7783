"""Real `manage.py rqworker` processes against the test database, for tests that need one."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def worker_env(**extra):
    db = connection.settings_dict
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "1", "GANTRY_JOB_HEARTBEAT_SECONDS": "1",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}", **extra}


def start_worker(queue, *args, env=None):
    """`manage.py rqworker [args] QUEUE`, beating its heartbeat every second (`env`: more variables)."""
    return subprocess.Popen([sys.executable, "manage.py", "rqworker", *args, queue], cwd=ROOT,
                            env=worker_env(**(env or {})), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_worker_and_work_horse(pid):
    """SIGKILL the worker and the work horse it forked (RQ moves the horse to its own session)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for target in [pid, *map(int, children)]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
