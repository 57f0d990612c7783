"""Settings for the test suite: real PostgreSQL and Redis (found or started by portal.testing)."""
import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("GANTRY_TESTING", "1")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from portal.testing import ensure_test_services  # noqa: E402

ensure_test_services()

from portal.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
GANTRY_JOB_HEARTBEAT_SECONDS = 1
GANTRY_JOB_STALE_SECONDS = 3

# The audit table refuses TRUNCATE (a trigger); the test suite's flush between tests may.
if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c gantry.audit_truncate=allow"  # noqa: F405
