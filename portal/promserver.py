"""Start a real Prometheus (the Debian ``prometheus`` binary) scraping the sandbox cluster.

Used by the tests (a server per test on a free port, 1 s scrape interval) and by ``make demo``.
This is tooling, like the sandbox: Gantry itself talks to any Prometheus through portal.prometheus.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

from portal.throwaway import free_port

from . import prometheus

INSTALL_HINT = ("the prometheus binary is missing: `make system` (or `apt-get install -y --no-install-recommends "
                "prometheus`) installs it")


def binary():
    return shutil.which("prometheus")


class PrometheusServer:
    """``with PrometheusServer([sandbox.url]) as server: server.url`` -- scrapes ``/sandbox/metrics``."""

    def __init__(self, targets, *, port=0, scrape_interval="1s", metrics_path="/sandbox/metrics", data_dir=None):
        self.targets = [urlsplit(t).netloc or t for t in targets]
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.metrics_path = metrics_path
        self.data_dir = data_dir
        self.process = None
        self._own_dir = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def config(self):
        targets = ", ".join(f'"{t}"' for t in self.targets)
        return (f"global:\n  scrape_interval: {self.scrape_interval}\n  evaluation_interval: {self.scrape_interval}\n"
                f"scrape_configs:\n  - job_name: sandbox\n    metrics_path: {self.metrics_path}\n"
                f"    honor_labels: true\n    static_configs:\n      - targets: [{targets}]\n")

    def start(self, wait=30.0):
        path = binary()
        if path is None:
            raise RuntimeError(INSTALL_HINT)
        if self.data_dir is None:
            self._own_dir = self.data_dir = tempfile.mkdtemp(prefix="gantry-prometheus-")
        config = f"{self.data_dir}/prometheus.yml"
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(self.config())
        self.log = open(f"{self.data_dir}/prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own arguments
            [path, f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}; see {self.data_dir}/prometheus.log")
            if prometheus.is_ready(self.url, timeout=0.5):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready within {wait:.0f} s")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None
        if self._own_dir:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
