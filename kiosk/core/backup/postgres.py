"""PostgreSQL: pg_dump (custom format) of one snapshot, whose row counts are read in that
same snapshot, and pg_restore into an empty database in one transaction."""

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..errors import DomainError

DUMP_FILE = "database.pgdump"
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
# A table held by an exclusive lock (a migration running) stops the dump, not hangs it.
LOCK_WAIT = "60s"
COPY_LINE = re.compile(r'^COPY ("?[^ ]+?"?)\.("?[^ ]+?"?) \(.*\) FROM stdin;$')

ERR_TOOL_MISSING = ("{tool} was not found: install PostgreSQL {major}'s client programs "
                    "(Debian/Ubuntu: apt install postgresql-client-{major}).")
ERR_TOOL_OLD = ("{tool} {found} is older than the PostgreSQL {major} server and cannot work "
                "with it: install postgresql-client-{major} (or newer).")
ERR_CONNECT = "The PostgreSQL database {where} could not be used: {why}."
ERR_TOOL_FAILED = "{tool} failed: {why}"
ERR_DUMP_COUNTS = ("The backup does not match its manifest: the dump holds {found} rows of "
                   "{table}, the manifest says {expected}.")


def where(url: URL) -> str:
    """The database named for people: host, port and name, never the password."""
    return f"{url.database} on {url.host or 'localhost'}:{url.port or 5432}"


def _engine(url: URL):
    return create_engine(url, poolclass=NullPool, hide_parameters=True)


def _connection_problem(url: URL, exc: Exception) -> DomainError:
    orig = getattr(exc, "orig", None) or exc
    why = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
    return DomainError("database_unreachable", ERR_CONNECT.format(where=where(url), why=why))


def _tool_env(url: URL) -> tuple[str, dict]:
    """The libpq connection string for the pg_* programs, without the password, which goes
    in their environment (never on a command line others can read with ps)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    conninfo = url.set(drivername="postgresql", password=None)
    return conninfo.render_as_string(hide_password=False), env


def _major(path: str) -> int | None:
    try:
        out = subprocess.run([path, "--version"],  # noqa: S603 - a pg_* program found above
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return None
    found = re.search(r"\)\s*(\d+)", out)
    return int(found.group(1)) if found else None


def pg_tool(tool: str, server_major: int) -> str:
    """The path of `tool` (pg_dump, pg_restore) able to work with the server: the one on
    PATH, else the newest of Debian's /usr/lib/postgresql/<major>/bin; or a DomainError
    naming the package to install."""
    paths = [shutil.which(tool), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))]
    versions = {path: _major(path) for path in dict.fromkeys(p for p in paths if p)}
    versions = {path: major for path, major in versions.items() if major}
    for path, major in versions.items():
        if major >= server_major:
            return path
    if not versions:
        raise DomainError("tool_missing", ERR_TOOL_MISSING.format(tool=tool, major=server_major))
    raise DomainError("tool_old", ERR_TOOL_OLD.format(tool=tool, found=max(versions.values()),
                                                      major=server_major))


def _tables(conn) -> list[tuple[str, str]]:
    rows = conn.execute(text("SELECT schemaname, tablename FROM pg_tables WHERE schemaname "
                             "<> ALL(:system) ORDER BY schemaname, tablename"),
                        {"system": list(SYSTEM_SCHEMAS)})
    return [(row[0], row[1]) for row in rows]


def _name(schema: str, table: str) -> str:
    """A table as the manifest names it: bare in the public schema (as on SQLite)."""
    return table if schema == "public" else f"{schema}.{table}"


def _counts(conn) -> dict[str, int]:
    counts = {}
    for schema, table in _tables(conn):
        quoted = '"{}"."{}"'.format(schema.replace('"', '""'), table.replace('"', '""'))
        counts[_name(schema, table)] = conn.execute(
            text(f"SELECT count(*) FROM {quoted}")).scalar()  # noqa: S608 - names from pg_tables
    return counts


def _revision(conn, counts: dict) -> str | None:
    if "alembic_version" not in counts:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _server_major(conn) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar()) // 10000


def _run(command: list[str], env: dict, tool: str) -> str:
    done = subprocess.run(command, env=env,  # noqa: S603 - pg_* programs, no shell
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = next((line for line in lines if "error" in line.lower()), lines[0] if lines
                   else f"exit status {done.returncode}")
        raise DomainError("tool_failed", ERR_TOOL_FAILED.format(tool=tool, why=why[:400]))
    return done.stdout


def pg_snapshot(url: URL, folder: Path) -> dict:
    """Dump the database into folder/database.pgdump with pg_dump --format=custom, from a
    snapshot this function exports and counts the rows in, so the manifest's counts are
    the dump's own whatever the application writes meanwhile. Returns its facts."""
    try:
        with _engine(url).connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar()
                counts = _counts(conn)
                revision = _revision(conn, counts)
                major = _server_major(conn)
                version = conn.execute(text("SHOW server_version")).scalar()
                conninfo, env = _tool_env(url)
                # The snapshot lives as long as this transaction: pg_dump runs inside it.
                _run([pg_tool("pg_dump", major), "--format=custom", "--no-password",
                      f"--snapshot={snapshot}", f"--lock-wait-timeout={LOCK_WAIT}",
                      f"--file={folder / DUMP_FILE}", f"--dbname={conninfo}"], env, "pg_dump")
    except SQLAlchemyError as exc:
        raise _connection_problem(url, exc) from None
    return {"kind": "postgresql", "file": DUMP_FILE, "tables": counts,
            "alembic_revision": revision, "server_version": version}


def pg_backup_counts(folder: Path, facts: dict, manifest_tables: dict) -> dict[str, int]:
    """Rows of each table in the dump, counted from its data (pg_restore --data-only into
    text: one line per row of each COPY block), before a restore touches anything."""
    command = [pg_tool("pg_restore", 0), "--data-only", "--file=-", str(folder / facts["file"])]
    counts = dict.fromkeys(manifest_tables, 0)
    # Streamed: the data of a large database never sits in memory at once.
    with subprocess.Popen(command, stdout=subprocess.PIPE,  # noqa: S603 - no shell
                          stderr=subprocess.PIPE, text=True) as process:
        _copy_counts(process.stdout, counts)
        errors = process.stderr.read()
    if process.returncode != 0:
        why = (errors.strip().splitlines() or [f"exit status {process.returncode}"])[0]
        raise DomainError("backup_damaged", ERR_TOOL_FAILED.format(tool="pg_restore",
                                                                   why=why[:400]))
    return counts


def _copy_counts(lines, counts: dict[str, int]) -> None:
    """Count the rows of each COPY block in pg_restore's text output."""
    table = None
    for line in lines:
        line = line.rstrip("\n")
        if table is None:
            found = COPY_LINE.match(line)
            if found:
                schema, name = (part.strip('"') for part in found.groups())
                table = _name(schema, name)
                counts[table] = 0
        elif line == "\\.":
            table = None
        else:
            counts[table] += 1  # COPY's text format escapes newlines inside values


def pg_tables(url: URL) -> list[str]:
    """The tables the target database already holds."""
    try:
        with _engine(url).connect() as conn:
            return [_name(schema, table) for schema, table in _tables(conn)]
    except SQLAlchemyError as exc:
        raise _connection_problem(url, exc) from None


def pg_restore(folder: Path, facts: dict, url: URL) -> dict[str, int]:
    """Restore the dump into the (empty) target in one transaction (a failure leaves it
    empty), owned by the target's user; the target's row counts afterwards."""
    try:
        with _engine(url).connect() as conn:
            major = _server_major(conn)
        conninfo, env = _tool_env(url)
        _run([pg_tool("pg_restore", major), "--single-transaction", "--exit-on-error",
              "--no-owner", "--no-privileges", "--no-password", f"--dbname={conninfo}",
              str(folder / facts["file"])], env, "pg_restore")
        with _engine(url).connect() as conn:
            return _counts(conn)
    except SQLAlchemyError as exc:
        raise _connection_problem(url, exc) from None


def pg_empty(url: URL) -> None:
    """Drop every table a restore made (the target held none before): a restore that
    failed its check leaves the database as it found it."""
    with _engine(url).begin() as conn:
        for schema, table in _tables(conn):
            quoted = '"{}"."{}"'.format(schema.replace('"', '""'), table.replace('"', '""'))
            conn.execute(text(f"DROP TABLE IF EXISTS {quoted} CASCADE"))
