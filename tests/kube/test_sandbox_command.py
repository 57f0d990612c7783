"""`manage.py sandbox_cluster --port PORT` (API.md) serves the sandbox API until stopped."""
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from portal.throwaway import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_serves_the_kubernetes_api_until_terminated():
    port = free_port()
    env = dict(os.environ, DEBUG="1", DJANGO_SETTINGS_MODULE="portal.settings")
    proc = subprocess.Popen([sys.executable, "manage.py", "sandbox_cluster", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as response:
            assert json.load(response)["gitVersion"].startswith("v1.")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/namespaces", timeout=5) as response:
            assert json.load(response)["kind"] == "NamespaceList"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
