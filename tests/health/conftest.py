"""A real Prometheus for the health tests: started per test on a free port, scraping the sandbox every second."""
import time

import pytest

from portal import promserver


@pytest.fixture
def prometheus_server(sandbox):
    if promserver.binary() is None:
        pytest.fail(promserver.INSTALL_HINT)
    with promserver.PrometheusServer([sandbox.url], scrape_interval="1s") as server:
        yield server


def wait_until(predicate, timeout=30.0, interval=0.2):
    """Poll until predicate() returns something truthy; return it (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value
