"""The gateway to PostgreSQL tools: the only module that runs pg_dump, pg_restore and psql, and the one
that connects to the databases Gantry backs up (never Gantry's own connection).

- `dump(dsn)` yields the bytes of `pg_dump -Fc` as they come (no temporary file);
- `restore(dsn, chunks)` feeds chunks to `pg_restore` on its stdin;
- `list_dump_tables(chunks)` lists the tables a dump holds (`pg_restore -l`);
- small admin helpers: create/drop/exists database, user tables, row counts, a sanity query;
- `dump(dsn, row_counts={})` also counts every table's rows in the dump's own snapshot.

A DSN's password never appears on a command line (it goes through PGPASSWORD) nor in a message.
Failures raise `PgToolError` with a sentence that says what to fix: a pg_dump older than the
server, a wrong password, an unreachable or unknown host, a missing database.
"""
import fcntl
import os
import re
import shutil
import subprocess
import threading
import time
from contextlib import suppress

import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

CHUNK = 1024 * 1024
CONNECT_TIMEOUT = 10


class PgToolError(Exception):
    """A PostgreSQL tool or connection failed; `str()` says what to fix."""


def _binary(name):
    bindir = getattr(settings, "GANTRY_PG_BINDIR", "")
    path = os.path.join(bindir, name) if bindir else shutil.which(name)
    if not path or not os.path.exists(path):
        raise PgToolError(f"{name} is not installed on this worker: install the PostgreSQL client tools matching "
                          "the server's major version (Debian: postgresql-client), or set GANTRY_PG_BINDIR")
    return path


def parse_dsn(dsn):
    """The DSN's parts as a dict (libpq's own parser: URLs and key=value both work)."""

    try:
        return conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg raises ProgrammingError with libpq's words
        raise PgToolError(f"the DSN cannot be read ({str(exc).splitlines()[0]}): use "
                          "postgres://user:password@host:5432/database") from None


def describe(dsn, dbname=None):
    """user@host:port/database, safe to show (no password)."""
    parts = parse_dsn(dsn)
    return (f"{parts.get('user', 'postgres')}@{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/"
            f"{dbname or parts.get('dbname', '')}")


def with_database(dsn, dbname):
    """The same server and credentials, another database (as a key=value DSN)."""

    return make_conninfo(**(parse_dsn(dsn) | {"dbname": dbname}))


def _command_parts(dsn, dbname=None):
    """(conninfo without password, environment with PGPASSWORD) for a tool's --dbname."""

    parts = parse_dsn(dsn)
    password = parts.pop("password", None)
    if dbname:
        parts["dbname"] = dbname
    parts.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if password:
        env["PGPASSWORD"] = password
    return make_conninfo(**parts), env


def explain(text, dsn=None, tool="pg_dump"):
    """Turn a tool's or libpq's error text into one sentence that says what to fix."""
    where = describe(dsn) if dsn else "the server"
    parts = parse_dsn(dsn) if dsn else {}
    host, port, user = parts.get("host", "localhost"), parts.get("port", "5432"), parts.get("user", "postgres")
    mismatch = re.search(r"server version: ([\d.]+)\S*; \S+ version: ([\d.]+)", text)
    if "server version mismatch" in text or mismatch:
        server, client = (mismatch.group(1), mismatch.group(2)) if mismatch else ("newer", "older")
        return (f"{tool} {client} is older than the server ({server}) and refuses to dump a newer major version: "
                f"install the PostgreSQL {server.split('.')[0]} client tools on the worker (or set GANTRY_PG_BINDIR)")
    if "password authentication failed" in text or "no password supplied" in text:
        return (f"the server refused the password of user {user} ({where}): correct the password in the "
                "target's DSN")
    if "could not translate host name" in text or "Name or service not known" in text:
        return f"the host {host} is unknown (DNS lookup failed): correct the host in the target's DSN"
    if "Connection refused" in text or "timeout expired" in text or "No route to host" in text \
            or "could not connect" in text:
        reason = "timed out" if "timeout expired" in text else "connection refused"
        return (f"cannot reach PostgreSQL at {host}:{port} ({reason}): check the host and port in the target's "
                "DSN and that the server accepts connections from the worker")
    missing = re.search(r'database "([^"]+)" does not exist', text)
    if missing:
        return f"the database {missing.group(1)} does not exist on {host}:{port}: correct the database in the DSN"
    role = re.search(r'role "([^"]+)" does not exist', text)
    if role:
        return f"the user {role.group(1)} does not exist on {host}:{port}: correct the user in the target's DSN"
    if "permission denied" in text:
        line = next((ln for ln in text.splitlines() if "permission denied" in ln), text)
        return f"{tool} lacks a privilege ({line.split('error:')[-1].strip()}): grant the DSN's user read access"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln.split("error:", 1)[1].strip() for ln in lines if "error:" in ln]
    return f"{tool} failed: {errors[0] if errors else lines[-1] if lines else 'no message'}"


PIPE_SIZE = 1024 * 1024
_F_SETPIPE_SZ = 1031  # Linux fcntl


def _widen_pipe(stream):
    """Give a pipe to or from a tool a 1 MiB kernel buffer (Linux; 64 KiB by default), best effort.

    On a busy machine the tool and the worker are rarely scheduled together: with a 64 KiB pipe the
    tool stalls as soon as the worker is off the CPU (or busy hashing, writing, uploading)."""

    try:
        return fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, PIPE_SIZE) >= PIPE_SIZE
    except (OSError, ValueError, AttributeError):
        return False


def _drain(stream, sink):
    sink.append(stream.read())


def dump(dsn, row_counts=None):
    """Yield `pg_dump -Fc` output chunk by chunk; raise PgToolError (after the last chunk) if it failed.

    With a dict as `row_counts`, also fill it with the exact rows of every table (`{"schema.table": n}`,
    see `count_rows`) as the dump sees them: a REPEATABLE READ transaction exports its snapshot, pg_dump
    runs with `--snapshot`, and the counts run in that same transaction while pg_dump streams.

    Closing the generator early stops pg_dump."""
    conninfo, env = _command_parts(dsn)
    options, snapshot = [], None
    if row_counts is not None:
        snapshot = _SnapshotCounter(dsn, row_counts)
        options = ["--snapshot", snapshot.name]
    try:
        proc = subprocess.Popen([_binary("pg_dump"), "--format=custom", "--no-password", *options,
                                 "--dbname", conninfo], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except BaseException:
        if snapshot:
            snapshot.close()
        raise
    # pg_dump writes a few KiB at a time: reading each write as it comes costs a wake-up per write (about
    # 100 per MiB). With a wide pipe, a short read lets the pipe fill for GANTRY_DUMP_BATCH_PAUSE (10 ms)
    # first (it would take pg_dump over 100 MB/s to fill 1 MiB in that time), so chunks are hundreds of KiB.
    pause = settings.GANTRY_DUMP_BATCH_PAUSE if _widen_pipe(proc.stdout) else 0
    errors = []
    reader = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
    reader.start()
    if snapshot:
        snapshot.start()
    finished = False
    try:
        while True:
            chunk = proc.stdout.read1(CHUNK)
            if not chunk:
                break
            yield chunk
            if pause and len(chunk) < CHUNK // 4:
                time.sleep(pause)
        finished = True
    finally:
        if not finished:
            with suppress(ProcessLookupError):
                proc.kill()
        proc.stdout.close()
        code = proc.wait()
        reader.join(timeout=5)
        counting_error = snapshot.close(cancel=not finished) if snapshot else None
    if code != 0:
        raise PgToolError(explain((errors[0] if errors else b"").decode("utf-8", "replace"), dsn, "pg_dump"))
    if counting_error:
        raise PgToolError(counting_error)


class _SnapshotCounter:
    """A REPEATABLE READ transaction on the dumped database whose snapshot pg_dump imports, counting
    the rows of every table in a thread while the dump streams. It stays open until pg_dump ends."""

    def __init__(self, dsn, into):
        self.dsn, self.into, self.error = dsn, into, None
        self.conn = connect(dsn)
        try:
            self.conn.autocommit = False
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.conn.read_only = True
            self.name = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except psycopg.Error as exc:
            self.conn.close()
            raise PgToolError(explain(str(exc), dsn, "pg_dump")) from None
        self.thread = threading.Thread(target=self._count, daemon=True)

    def _count(self):
        try:
            self.into.update(_count_rows(self.conn))
        except psycopg.Error as exc:
            self.error = f"counting the rows of the dumped tables failed: {str(exc).splitlines()[0]}"

    def start(self):
        self.thread.start()

    def close(self, cancel=False):
        """Wait for the counts (cancelled when the dump was cut short), end the transaction; returns the
        counting error or None."""
        if self.thread.ident is not None:
            if cancel and self.thread.is_alive():
                with suppress(Exception):
                    self.conn.cancel_safe()
            self.thread.join()
        with suppress(Exception):
            self.conn.close()
        return self.error


def _feed(proc, chunks, tool, dsn=None):
    """Write chunks to proc's stdin, then wait; raise PgToolError with the tool's stderr when it fails."""
    _widen_pipe(proc.stdin)
    errors, output = [], []
    err_reader = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
    err_reader.start()
    out_reader = None
    if proc.stdout is not None:
        out_reader = threading.Thread(target=_drain, args=(proc.stdout, output), daemon=True)
        out_reader.start()
    try:
        for chunk in chunks:
            try:
                proc.stdin.write(chunk)
            except BrokenPipeError:
                break  # the tool stopped reading: it failed; its stderr says why
        with suppress(BrokenPipeError):
            proc.stdin.close()
    except BaseException:
        with suppress(ProcessLookupError):
            proc.kill()
        raise
    finally:
        code = proc.wait()
        err_reader.join(timeout=5)
        if out_reader:
            out_reader.join(timeout=5)
    if code != 0:
        raise PgToolError(explain((errors[0] if errors else b"").decode("utf-8", "replace"), dsn, tool))
    return (output[0] if output else b"").decode("utf-8", "replace")


def restore(dsn, chunks, dbname=None, clean=False):
    """`pg_restore` a custom-format dump (given as chunks) into the database; objects keep no owner/grants.

    `clean` drops the dump's objects first (restoring over an existing database)."""
    conninfo, env = _command_parts(dsn, dbname)
    options = ["--clean", "--if-exists"] if clean else []
    proc = subprocess.Popen([_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                             *options, "--no-password", "--dbname", conninfo],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _feed(proc, chunks, "pg_restore", dsn)


_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )(\S+) (\S+) ")


def list_dump_tables(chunks):
    """The (schema, table) pairs a custom-format dump defines, read from its table of contents."""
    proc = subprocess.Popen([_binary("pg_restore"), "--list"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        text = _feed(proc, chunks, "pg_restore")
    except PgToolError as exc:
        raise PgToolError(f"the dump cannot be read ({exc}): the object is corrupted or truncated") from None
    return sorted({m.groups() for m in map(_TOC_TABLE.match, text.splitlines()) if m})


def connect(dsn, dbname=None):
    """An autocommit psycopg connection to the target's server (PgToolError with a sentence when it fails)."""

    parts = parse_dsn(dsn) | ({"dbname": dbname} if dbname else {})
    parts.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
    try:
        return psycopg.connect(**parts, autocommit=True)
    except psycopg.OperationalError as exc:
        raise PgToolError(explain(str(exc), dsn, "psql")) from None


def _quote(name):
    return sql.Identifier(name)


def database_exists(dsn, name):
    with connect(dsn, "postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def create_database(dsn, name):
    with connect(dsn, "postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(_quote(name)))


def drop_database(dsn, name):
    with connect(dsn, "postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_quote(name)))


def user_tables(dsn, dbname=None):
    """{(schema, table)} of ordinary tables outside the system schemas."""
    with connect(dsn, dbname) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%%'").fetchall()
    return {(schema, table) for schema, table in rows}


def largest_tables_row_counts(dsn, dbname=None, limit=5):
    """[(schema, table, exact rows)] of the `limit` largest tables by size on disk."""

    with connect(dsn, dbname) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%%' ORDER BY pg_total_relation_size(c.oid) DESC, 1, 2 LIMIT %s",
            [limit]).fetchall()
        return [(schema, table, conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
            _quote(schema), _quote(table))).fetchone()[0]) for schema, table in rows]


_COUNTED_TABLES = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%' "
    # tables an extension owns are its business (CREATE EXTENSION fills them on restore)
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
    "AND d.deptype = 'e') ORDER BY 1, 2")


def _count_rows(conn):
    tables = conn.execute(_COUNTED_TABLES).fetchall()
    return {f"{schema}.{table}": conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(
        _quote(schema), _quote(table))).fetchone()[0] for schema, table in tables}


def count_rows(dsn, dbname=None):
    """{"schema.table": exact rows} of every ordinary table outside the system schemas (own rows only,
    not an inheritance child's) - what `dump(row_counts=...)` records, to compare a restore with."""
    with connect(dsn, dbname) as conn:
        return _count_rows(conn)


def sanity_check(dsn, query, dbname=None):
    """Run a read-only query; (True, detail) when its first column of the first row is true."""

    with connect(dsn, dbname) as conn:
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                row = conn.execute(query).fetchone()
        except psycopg.Error as exc:
            return False, f"the query failed: {str(exc).splitlines()[0]}"
    if not row:
        return False, "the query returned no row"
    return row[0] is True, f"returned {row[0]!r}"


def server_version(dsn):
    with connect(dsn) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def client_version():
    output = subprocess.run([_binary("pg_dump"), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"(\d+(?:\.\d+)?)", output)
    return match.group(1) if match else ""
