"""Gantry settings: everything that differs between machines comes from the environment.

DATABASE_URL (default: a SQLite file), REDIS_URL, SECRET_KEY (required when DEBUG is off),
ALLOWED_HOSTS (comma-separated), GANTRY_* for Gantry's own options.
"""
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Set SECRET_KEY in the environment "
            "(for example: SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')), "
            "or set DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-development-key-only-for-debug-mode-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_rq",
    "django_prometheus",
    "ninja",
    "portal",
    "portal.accounts",
    "portal.audit",
    "portal.jobs",
    "environments",
    "environments.backups",
    "deployments",
    "deployments.monitoring",
    "deployments.compliance",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.live.LivePollMiddleware",
    "portal.error_pages.ErrorPagesMiddleware",
    "portal.middleware.UserTimezoneMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# The first signs people in (and loads the profile with the user); ModelBackend stays listed so that
# sessions signed in before it existed stay signed in.
AUTHENTICATION_BACKENDS = ["portal.accounts.backends.ModelWithProfileBackend", "django.contrib.auth.backends.ModelBackend"]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'gantry.sqlite3'}",
        conn_max_age=int(os.environ.get("GANTRY_DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One writer at a time, taken at BEGIN: audit appends can never interleave.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or env_bool("GANTRY_TESTING")
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_url_with_timeouts(url):
    """Bounded waits on Redis (unless the URL sets its own), so a Redis outage delays a page by
    seconds at most: the request is answered and the job waits `queued` (portal/jobs/queue.py)."""

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("socket_connect_timeout", os.environ.get("GANTRY_REDIS_CONNECT_TIMEOUT", "3"))
    query.setdefault("socket_timeout", os.environ.get("GANTRY_REDIS_SOCKET_TIMEOUT", "5"))
    return urlunsplit(parts._replace(query=urlencode(query)))


RQ_QUEUES = {
    name: {"URL": redis_url_with_timeouts(REDIS_URL), "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (("deploy", 1800), ("backups", 7200), ("health", 120), ("default", 600))
}
RQ_SHOW_ADMIN_LINK = False

# Security: secure by default, relaxed only in DEBUG.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = int(os.environ.get("GANTRY_SESSION_AGE", str(12 * 3600)))
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("GANTRY_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("GANTRY_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("GANTRY_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = env_bool("GANTRY_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("GANTRY_SECURE_COOKIES", True)
    if env_bool("GANTRY_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# E-mail for notifications (Django's SMTP backend; the console in DEBUG unless EMAIL_HOST is set).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "gantry@localhost")
if not EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# Gantry's own options.
GANTRY_ENCRYPTION_KEY = os.environ.get("GANTRY_ENCRYPTION_KEY", "")
# The audit chain's HMAC key and signed checkpoints (SECURITY.md).
GANTRY_AUDIT_KEY = os.environ.get("GANTRY_AUDIT_KEY", "")
GANTRY_AUDIT_OLD_KEYS = [k for k in os.environ.get("GANTRY_AUDIT_OLD_KEYS", "").split(",") if k.strip()]
GANTRY_AUDIT_CHECKPOINT_DIR = os.environ.get("GANTRY_AUDIT_CHECKPOINT_DIR", "")
GANTRY_AUDIT_CHECKPOINT_S3_BUCKET = os.environ.get("GANTRY_AUDIT_CHECKPOINT_S3_BUCKET", "")
GANTRY_AUDIT_CHECKPOINT_S3_ENDPOINT = os.environ.get("GANTRY_AUDIT_CHECKPOINT_S3_ENDPOINT", "")
# Each checkpoint in an Object Lock bucket is locked by itself: this mode (COMPLIANCE or GOVERNANCE) for this
# many days (or the bucket's default period when longer).
GANTRY_AUDIT_CHECKPOINT_LOCK_MODE = os.environ.get("GANTRY_AUDIT_CHECKPOINT_LOCK_MODE", "COMPLIANCE").upper()
GANTRY_AUDIT_CHECKPOINT_RETENTION_DAYS = int(os.environ.get("GANTRY_AUDIT_CHECKPOINT_RETENTION_DAYS", "400"))
# Webhooks may call private addresses only when listed here (host names, addresses or networks).
GANTRY_WEBHOOK_ALLOWED_HOSTS = [h.strip() for h in os.environ.get("GANTRY_WEBHOOK_ALLOWED_HOSTS", "").split(",")
                                if h.strip()]
GANTRY_PAGE_SIZE = int(os.environ.get("GANTRY_PAGE_SIZE", "50"))
GANTRY_JOB_HEARTBEAT_SECONDS = int(os.environ.get("GANTRY_JOB_HEARTBEAT_SECONDS", "10"))
GANTRY_JOB_STALE_SECONDS = int(os.environ.get("GANTRY_JOB_STALE_SECONDS", "40"))
GANTRY_JOBS_EAGER = env_bool("GANTRY_JOBS_EAGER", False)
# A queued job whose message Redis lost (flush, restart, unreachable at enqueue) is sent again
# by the reconcile pass once it has waited this long (portal/jobs/reconcile.py).
GANTRY_RECONCILE_GRACE_SECONDS = int(os.environ.get("GANTRY_RECONCILE_GRACE_SECONDS", "10"))
# Only the scheduler holding this lease (a PostgreSQL row, renewed every second) sends periodic
# work; another takes over this long after the holder died (portal/jobs/scheduler.py).
GANTRY_SCHEDULER_LEASE_SECONDS = int(os.environ.get("GANTRY_SCHEDULER_LEASE_SECONDS", "15"))
# A job cut off by a lost database connection waits up to this long to record its end. A job cut
# off that way, or whose worker died (the reaper), is sent again automatically up to
# GANTRY_JOB_AUTO_RETRIES times (job code is idempotent); after that it stays failed.
GANTRY_DB_RECONNECT_SECONDS = int(os.environ.get("GANTRY_DB_RECONNECT_SECONDS", "60"))
GANTRY_JOB_AUTO_RETRIES = int(os.environ.get("GANTRY_JOB_AUTO_RETRIES", "2"))
GANTRY_ROLLOUT_TIMEOUT_SECONDS = float(os.environ["GANTRY_ROLLOUT_TIMEOUT_SECONDS"]) if os.environ.get(
    "GANTRY_ROLLOUT_TIMEOUT_SECONDS") else None  # default: each Deployment's progressDeadlineSeconds
GANTRY_LOGIN_MAX_FAILURES = int(os.environ.get("GANTRY_LOGIN_MAX_FAILURES", "10"))
GANTRY_LOGIN_WINDOW_MINUTES = int(os.environ.get("GANTRY_LOGIN_WINDOW_MINUTES", "15"))
GANTRY_LOGIN_MAX_FAILURES_PER_ADDRESS = int(os.environ.get("GANTRY_LOGIN_MAX_FAILURES_PER_ADDRESS", "50"))
GANTRY_TOKEN_FAILURES_PER_WINDOW = int(os.environ.get("GANTRY_TOKEN_FAILURES_PER_WINDOW", "20"))
GANTRY_TOKEN_FAILURE_WINDOW_SECONDS = int(os.environ.get("GANTRY_TOKEN_FAILURE_WINDOW_SECONDS", "60"))
GANTRY_METRICS_TOKEN = os.environ.get("GANTRY_METRICS_TOKEN", "")
GANTRY_METRICS_ALLOWED_IPS = [a.strip() for a in os.environ.get("GANTRY_METRICS_ALLOWED_IPS", "").split(",") if a.strip()]
GANTRY_ABANDON_MINUTES = int(os.environ.get("GANTRY_ABANDON_MINUTES", "30"))
GANTRY_BASE_URL = os.environ.get("GANTRY_BASE_URL", "")
# Live health (deployments.monitoring): probes in flight per shard job, each probe's timeout, environments per job.
GANTRY_PROBE_PARALLELISM = int(os.environ.get("GANTRY_PROBE_PARALLELISM", "32"))
GANTRY_PROBE_TIMEOUT_SECONDS = float(os.environ.get("GANTRY_PROBE_TIMEOUT_SECONDS", "3"))
GANTRY_PROBE_SHARD_SIZE = int(os.environ.get("GANTRY_PROBE_SHARD_SIZE", "10"))
# Container restarts of a service's pods within the window that make a healthy cell degraded ("4 restarts in 10 min").
GANTRY_RESTART_WINDOW_SECONDS = int(os.environ.get("GANTRY_RESTART_WINDOW_SECONDS", "600"))
GANTRY_RESTARTS_DEGRADE = int(os.environ.get("GANTRY_RESTARTS_DEGRADE", "3"))
GANTRY_TRUST_X_FORWARDED_FOR = env_bool("GANTRY_TRUST_X_FORWARDED_FOR", False)
GANTRY_EVIDENCE_DIR = os.environ.get("GANTRY_EVIDENCE_DIR", "")  # period evidence ZIPs (default BASE_DIR/.evidence)
GANTRY_BACKUP_DIR = os.environ.get("GANTRY_BACKUP_DIR", str(BASE_DIR / "backups-local"))  # the default local store
GANTRY_PG_BINDIR = os.environ.get("GANTRY_PG_BINDIR", "")  # pg_dump/pg_restore matching the servers; default: PATH
# A backup reading pg_dump waits this long after a short read so the (1 MiB) pipe fills: fewer, larger chunks.
GANTRY_DUMP_BATCH_PAUSE = float(os.environ.get("GANTRY_DUMP_BATCH_PAUSE", "0.01"))
# Audit retention: events older than this many days are archived as JSONL segments (unset: keep all).
GANTRY_AUDIT_RETENTION_DAYS = int(os.environ["GANTRY_AUDIT_RETENTION_DAYS"]) if os.environ.get(
    "GANTRY_AUDIT_RETENTION_DAYS") else None
GANTRY_AUDIT_ARCHIVE_DIR = os.environ.get("GANTRY_AUDIT_ARCHIVE_DIR", "")  # default BASE_DIR/.audit-archive
# Or an S3 destination for the archive, JSON: {"kind": "s3", "bucket", "prefix", "endpoint_url", "region"} (keys
# from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the instance's role, through portal.storage).
GANTRY_AUDIT_ARCHIVE = __import__("json").loads(os.environ["GANTRY_AUDIT_ARCHIVE"]) if os.environ.get(
    "GANTRY_AUDIT_ARCHIVE") else None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("GANTRY_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "kubernetes": {"level": "WARNING"}},
}
