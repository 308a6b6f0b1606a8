"""SQLite: a snapshot through SQLite's online backup API (consistent while the application
writes, never a file copy, which could catch a page half-written or miss the -wal file's
commits), and a restore the same way into an empty file."""

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import URL

from ..errors import DomainError

DATABASE_FILE = "database.sqlite3"

ERR_NOT_A_FILE = "Only an SQLite database in a file can be backed up or restored, not {what}."
ERR_NO_SOURCE = "The database file {path} does not exist."
ERR_READ = "SQLite could not read {path}: {why}."
ERR_INTEGRITY = "The database copy failed SQLite's integrity check: {why}."


def sqlite_path(url: URL) -> Path:
    """The file of an SQLite URL, or a DomainError (in memory, or a file: URI)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") \
            or url.query.get("mode") == "memory":
        raise DomainError("not_a_file", ERR_NOT_A_FILE.format(what="one in memory"))
    return Path(database)


def table_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Rows in each table of the database (SQLite's own tables aside)."""
    names = [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    # The names come from sqlite_master, quoted: no input reaches this SQL.
    return {name: connection.execute(
        f'SELECT count(*) FROM "{_quoted(name)}"').fetchone()[0]  # noqa: S608
            for name in names}


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def alembic_revision(connection: sqlite3.Connection) -> str | None:
    """The schema's migration revision (None: never migrated, e.g. made by create_all)."""
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'alembic_version'").fetchone()
    if not found:
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def sqlite_snapshot(url: URL, folder: Path) -> dict:
    """Copy the database into folder/database.sqlite3 in one step of the backup API: one
    read transaction, so one consistent moment (in WAL mode writers carry on meanwhile).
    The copy is a single self-contained file (journal mode DELETE). Returns its facts."""
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise DomainError("no_database", ERR_NO_SOURCE.format(path=source_path))
    target = folder / DATABASE_FILE
    try:
        # A plain connection, not mode=ro: read-only opening of a WAL database fails where
        # the -shm file is missing and the folder is not writable; it only reads here.
        with closing(sqlite3.connect(source_path, timeout=30)) as source, \
                closing(sqlite3.connect(target)) as copy:
            source.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode=DELETE")
            _integrity_check(copy)
            return {"kind": "sqlite", "file": DATABASE_FILE, "tables": table_counts(copy),
                    "alembic_revision": alembic_revision(copy),
                    "sqlite_version": sqlite3.sqlite_version}
    except sqlite3.DatabaseError as exc:
        raise DomainError("backup_failed", ERR_READ.format(path=source_path, why=exc)) from None


def _integrity_check(connection: sqlite3.Connection) -> None:
    result = connection.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise DomainError("backup_failed", ERR_INTEGRITY.format(why=result))


def sqlite_backup_counts(folder: Path, facts: dict) -> dict[str, int]:
    """Rows in each table of the backup's database file, read-only (checked before a
    restore touches anything)."""
    path = folder / facts["file"]
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as copy:
            _integrity_check(copy)
            return table_counts(copy)
    except sqlite3.DatabaseError as exc:
        raise DomainError("backup_damaged", ERR_READ.format(path=path, why=exc)) from None


def sqlite_tables(url: URL) -> list[str]:
    """The tables the target already holds ([] for a file that does not exist yet)."""
    path = sqlite_path(url)
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as target:
            return sorted(table_counts(target))
    except sqlite3.DatabaseError as exc:
        raise DomainError("bad_target", ERR_READ.format(path=path, why=exc)) from None


def sqlite_restore(folder: Path, facts: dict, url: URL) -> dict[str, int]:
    """Copy the backup's database into the (empty) target file with the backup API; the
    target's row counts afterwards."""
    path = sqlite_path(url)
    if not path.parent.is_dir():
        raise DomainError("bad_target", f"The folder {path.parent} does not exist.")
    source_path = folder / facts["file"]
    with closing(sqlite3.connect(f"{source_path.resolve().as_uri()}?mode=ro",
                                 uri=True)) as source, \
            closing(sqlite3.connect(path)) as target:
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode=WAL")  # as the application keeps it
        _integrity_check(target)
        counts = table_counts(target)
    path.chmod(0o600)  # patient data: the server's user only
    return counts
