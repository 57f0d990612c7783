"""Fault tests: throwaway Redis (and PostgreSQL) servers the tests stop, restart and flush, real
`rqworker` processes, and the audit chain checked at the end of each case."""
import pytest
from django.core.management import call_command

from portal.settings import redis_url_with_timeouts
from portal.throwaway import ThrowawayPostgres, ThrowawayRedis


@pytest.fixture
def throwaway_pg():
    """A PostgreSQL cluster of this test only (started with initdb/pg_ctl), which the test may stop and restart."""
    server = ThrowawayPostgres().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def _redis_server():
    server = ThrowawayRedis().start()
    yield server
    server.close()


@pytest.fixture
def redis_server(_redis_server, settings):
    """A Redis of this test run only, empty at the start of each test; Gantry's queues point at it."""
    _redis_server.start()  # a test may have left it stopped
    _redis_server.flush()
    settings.RQ_QUEUES = {name: dict(config, URL=redis_url_with_timeouts(_redis_server.url))
                          for name, config in settings.RQ_QUEUES.items()}
    yield _redis_server
    _redis_server.start()


@pytest.fixture
def worker_env(redis_server):
    """Environment variables for worker processes: the throwaway Redis."""
    return {"REDIS_URL": redis_server.url}


def assert_audit_chain_intact():
    from io import StringIO

    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue(), out.getvalue()
