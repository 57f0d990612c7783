"""What each backup operation takes: a target to add or change, and a restore to request. One declared
schema per operation, the API's body and (through the service, `validated`) the page's form alike.
Rules that need the database or the stored row (a name already taken, the stored S3 keys a blank key
keeps) stay in the service, environments.backups.services."""
import os
import re
from typing import Annotated, Any

from django.conf import settings
from pydantic import ValidationInfo, model_validator

from portal import pgtools
from portal.schema_types import (
    InputSchema, TrueOrFalse, checked, checking_rules, one_of, refuse, rule, true_or_false, whole_number,
)
from portal.validation import check_dns_label

from .choices import DEPLOY_GUARDS
from .schedule import valid_cron, valid_timezone


def default_local_path():
    """Where a target without a destination keeps its backups: a directory on the worker."""
    return str(settings.GANTRY_BACKUP_DIR)


def _kind(value, field):
    if value not in (None, "postgresql"):
        refuse(f"kind: '{value}' is not supported; use postgresql")
    return "postgresql"


def _naming_a_database(dsn, unnamed):
    """`dsn` when it is a PostgreSQL connection string that names its database; else refused (`unnamed`
    says what to do when only the database is missing)."""
    try:
        parts = pgtools.parse_dsn(dsn)
    except pgtools.PgToolError as exc:
        refuse(f"dsn: {exc}")
    if not parts.get("dbname"):
        refuse(unnamed)
    return dsn


def _dsn(value, field):
    if not isinstance(value, str) or not value.strip():
        refuse("dsn: the database's connection string is required (postgres://user:password@host:5432/db)")
    return _naming_a_database(value.strip(), "dsn: name the database (postgres://user:password@host:5432/DATABASE)")


def _cron(required):
    def validate(value, field):
        value = value or ""
        if value and not valid_cron(value):
            refuse(f"{field}: '{value}' is not a cron expression (five fields, e.g. '0 3 * * *')")
        if required and not value:
            refuse(f"{field}: a cron expression is required (e.g. '0 3 * * *')")
        return value
    return rule(validate)


def _timezone(value, field):
    """A time zone name; blank: the one it had (the environment's, for a new target)."""
    if value in (None, ""):
        return None
    if not valid_timezone(value):
        refuse(f"timezone: '{value}' is not a time zone (e.g. Asia/Seoul, UTC)")
    return value


def _verify_sql(value, field):
    if value is not None and not isinstance(value, str):
        refuse("verify_sql: must be text (a query whose first value is true)")
    return (value or "").strip()


LOCAL_FIELDS = {"kind", "path"}
S3_FIELDS = {"kind", "bucket", "prefix", "endpoint_url", "region", "access_key_id", "secret_access_key"}
S3_KEYS = ("access_key_id", "secret_access_key")


def _local(value):
    path = value.get("path") or default_local_path()
    problems = []
    if not isinstance(path, str) or not os.path.isabs(path):
        problems.append(f"destination.path: '{path}' must be an absolute directory on the worker")
    unknown = set(value) - LOCAL_FIELDS
    if unknown:
        problems.append(f"destination: unknown field(s) for a local directory: {', '.join(sorted(unknown))}")
    return {"kind": "local", "path": path}, problems


def _s3(value):
    problems = []
    unknown = set(value) - S3_FIELDS
    if unknown:
        problems.append(f"destination: unknown field(s) for S3: {', '.join(sorted(unknown))}")
    bucket = value.get("bucket")
    if not isinstance(bucket, str) or not (3 <= len(bucket) <= 63):
        problems.append("destination.bucket: an S3 bucket name (3 to 63 characters) is required")
    endpoint = value.get("endpoint_url") or ""
    if endpoint and (not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))):
        problems.append(f"destination.endpoint_url: '{endpoint}' is not an http(s) URL")
    for name in ("prefix", "region", *S3_KEYS):
        if value.get(name) is not None and not isinstance(value.get(name), str):
            problems.append(f"destination.{name}: must be text")
    clean = {"kind": "s3", "bucket": bucket, "prefix": (value.get("prefix") or "").strip("/"),
             "endpoint_url": endpoint, "region": value.get("region") or ""}
    return clean | {key: value[key] for key in S3_KEYS if value.get(key)}, problems


def _destination(value, field):
    """{"kind": "local", "path": ...} or {"kind": "s3", "bucket": ..., ...}; S3 keys stay in it (the service
    moves them to the encrypted credentials)."""
    if not isinstance(value, dict):
        refuse('destination: give {"kind": "local", "path": ...} or {"kind": "s3", "bucket": ..., ...}')
    kind = value.get("kind")
    if kind not in ("local", "s3"):
        refuse(f"destination.kind: '{kind}' is not one of: local, s3")
    clean, problems = (_local if kind == "local" else _s3)(value)
    if problems:
        refuse(*problems)
    return clean


def _count(low, high):
    return whole_number(low, high, message="{field}: a whole number from {low} to {high}")


MINUTES_A_YEAR = 525600


class TargetChange(InputSchema):
    """Change a backup target: what it backs up, when, how long it keeps backups, where they go, how
    often a restore is proven, and whether deployments wait for a fresh backup. A DSN or S3 key left
    out (or blank) keeps the stored one."""

    name: Annotated[str | None, checked(check_dns_label)] = None
    dsn: Annotated[str | None, rule(_dsn)] = None
    schedule: Annotated[str | None, _cron(required=True)] = None
    verify_schedule: Annotated[str | None, _cron(required=False)] = None
    timezone: Annotated[str | None, rule(_timezone)] = None
    retention_days: Annotated[int | None, _count(1, 3650)] = None
    keep_last: Annotated[int | None, _count(1, 1000)] = None
    rpo_minutes: Annotated[int | None, _count(1, MINUTES_A_YEAR)] = None
    rto_minutes: Annotated[int | None, _count(1, MINUTES_A_YEAR)] = None
    verify_sql: Annotated[str | None, rule(_verify_sql)] = None
    deploy_guard: Annotated[str | None, one_of(DEPLOY_GUARDS, "{field}: '{value}' is not one of: {choices}")] = None
    deploy_guard_minutes: Annotated[int | None, _count(1, MINUTES_A_YEAR)] = None
    destination: Annotated[dict[str, Any] | None, rule(_destination)] = None
    enabled: TrueOrFalse = None


class TargetCreate(TargetChange):
    """Add a backup target (a PostgreSQL database) to an environment; what is left out takes its default
    (nightly at 03:00 in the environment's time zone, kept 7 days, into the worker's backup directory)."""

    name: Annotated[str, checked(check_dns_label)]
    kind: Annotated[str | None, rule(_kind)] = "postgresql"
    dsn: Annotated[str, rule(_dsn)]


class BackupStart(InputSchema):
    """Back up now: the environment's one target, or the one named."""

    target: str | None = None


DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _database(value, field):
    if value and not DATABASE_NAME.match(value):
        refuse("database: letters, digits and underscores, at most 63, not starting with a digit")
    return value or None


def _restore_dsn(value, field):
    return _naming_a_database(value, "dsn: name the database to restore into") if value else None


class RestoreRequest(InputSchema):
    """Restore a backup into a new database on the target's server (`database`), or into the database a
    DSN names; into one that has tables only with `allow_existing`."""

    database: Annotated[str | None, rule(_database)] = None
    dsn: Annotated[str | None, rule(_restore_dsn)] = None
    allow_existing: Annotated[bool | None, true_or_false("{field}: true or false")] = False

    @model_validator(mode="after")
    def _one_place(self, info: ValidationInfo):
        if checking_rules(info) and bool(self.database) == bool(self.dsn):
            refuse("give either `database` (a new database on the target's server) or `dsn`")
        return self
