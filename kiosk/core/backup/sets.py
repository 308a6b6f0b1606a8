"""Backup sets: make one (written under a temporary name, renamed once whole, so a set that
exists is complete), check one, restore one into an empty database."""

import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from .. import clock
from ..errors import DomainError
from ..files import folder_private
from . import postgres, sqlite
from .manifest import FORMAT, manifest_read, manifest_verify, manifest_write

SET_PREFIX = "kiosk-backup-"
STAMP = "%Y%m%dT%H%M%SZ"
FILES = "files"
KINDS = ("sqlite", "postgresql")

ERR_FOLDER_MISSING = "The backup folder {folder} does not exist (or is not a folder)."
ERR_FOLDER_WRITE = "Cannot write in the backup folder {folder}: {why}."
ERR_KIND = "Backups of {kind} databases are not supported (SQLite and PostgreSQL are)."
ERR_WRONG_KIND = ("This backup is of a {backup} database: restore it into a {backup} "
                  "database, not a {target} one.")
ERR_COUNTS = ("The backup does not match its manifest: {table} holds {found} rows, the "
              "manifest says {expected}.")
ERR_NOT_EMPTY = ("The target database {where} already holds {count} tables ({names}): "
                 "restore only into a new, empty database.")
ERR_KEPT = "The backup's manifest lists {name} among the kept files but holds no such file."
ERR_RESTORED_COUNTS = ("The restored database does not match the backup ({table}: {found} "
                       "rows, the manifest says {expected}); the restore was undone.")


def kept_files(instance_path: str, secret_key: str | None) -> dict[str, Path]:
    """Files kept outside the database that a restore needs: the instance folder's secret
    key when it is the key in use (it signs sessions and the client portal links already
    sent; a key from KIOSK_SECRET_KEY stays with the configuration). Archived PDFs live in
    the database (documents.pdf); the job queue's file is not needed (docs/backup.md)."""
    path = Path(instance_path) / "secret_key"
    if path.is_file() and secret_key and path.read_text().strip() == secret_key:
        return {"secret_key": path}
    return {}


def _kind(url: URL) -> str:
    kind = url.get_backend_name()
    if kind not in KINDS:
        raise DomainError("bad_kind", ERR_KIND.format(kind=kind))
    return kind


def where(url: URL) -> str:
    """The database named for people, never with its password."""
    return str(sqlite.sqlite_path(url)) if _kind(url) == "sqlite" else postgres.where(url)


def _set_path(folder: Path, at: datetime) -> Path:
    """A new set's name: the time it was made (sorts by age), numbered if taken."""
    name = f"{SET_PREFIX}{at.strftime(STAMP)}"
    path, number = folder / name, 1
    while path.exists():
        number += 1
        path = folder / f"{name}-{number}"
    return path


def _temporary_folder(folder: Path, name: str) -> Path:
    """A hidden work folder (mode 700) beside the set's final place, or a DomainError."""
    if not folder.is_dir():
        raise DomainError("bad_folder", ERR_FOLDER_MISSING.format(folder=folder), field="to")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".partial", dir=folder))
    except OSError as exc:
        raise DomainError("bad_folder", ERR_FOLDER_WRITE.format(
            folder=folder, why=exc.strerror or type(exc).__name__), field="to") from None


def backup_make(*, url: str, folder: Path, files: dict[str, Path], app_version: str) -> tuple:
    """Write one backup set of the database at `url` and of `files` into `folder`; the
    set's path and manifest. Nothing is left behind when it fails."""
    source = make_url(url)
    kind = _kind(source)
    at = clock.utcnow()
    folder = folder.absolute()
    final = _set_path(folder, at)
    work = _temporary_folder(folder, final.name)
    try:
        facts = (sqlite.sqlite_snapshot(source, work) if kind == "sqlite"
                 else postgres.pg_snapshot(source, work))
        kept = _files_copy(files, work / FILES)
        manifest_write(work, _manifest(facts, kept, app_version, at))
        _sealed(work)
        os.rename(work, final)
        _fsync_folder(folder)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise DomainError("backup_failed", ERR_FOLDER_WRITE.format(
            folder=folder, why=exc.strerror or type(exc).__name__)) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final, manifest_read(final)


def _manifest(facts: dict, kept: dict, app_version: str, at: datetime) -> dict:
    database = {key: value for key, value in facts.items()
                if key not in ("tables", "alembic_revision")}
    return {"format": FORMAT, "app": "kiosk", "app_version": app_version,
            "alembic_revision": facts["alembic_revision"], "created_at": clock.format_iso_z(at),
            "database": database, "tables": facts["tables"], "kept_files": kept}


def _files_copy(files: dict[str, Path], folder: Path) -> dict[str, str]:
    """Copy each kept file into the set (mode 600); name → its place in the set."""
    kept = {}
    for name, path in sorted(files.items()):
        folder_private(folder)
        shutil.copyfile(path, folder / name)
        os.chmod(folder / name, 0o600)
        kept[name] = f"{FILES}/{name}"
    return kept


def _sealed(folder: Path) -> None:
    """Every file of the set readable by the server's user only, and on disk before the
    rename makes the set visible."""
    for path in folder.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o600)
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_check(backup: Path) -> dict:
    """The manifest of a whole, undamaged set: every file there with its checksum, and the
    database's row counts as the manifest says (read from the set, nothing restored)."""
    manifest = manifest_read(backup)
    manifest_verify(backup, manifest)
    for name, place in sorted(manifest.setdefault("kept_files", {}).items()):
        if place not in manifest["files"]:  # each checked against its checksum, in the set
            raise DomainError("backup_damaged", ERR_KEPT.format(name=name))
    facts = manifest["database"]
    if facts.get("kind") not in KINDS:
        raise DomainError("bad_kind", ERR_KIND.format(kind=facts.get("kind")))
    found = (sqlite.sqlite_backup_counts(backup, facts) if facts["kind"] == "sqlite"
             else postgres.pg_backup_counts(backup, facts, manifest["tables"]))
    _counts_match(manifest["tables"], found, ERR_COUNTS, "backup_damaged")
    return manifest


def _counts_match(expected: dict, found: dict, message: str, code: str) -> None:
    for table in sorted(set(expected) | set(found)):
        if expected.get(table) != found.get(table):
            raise DomainError(code, message.format(table=table, found=found.get(table, 0),
                                                   expected=expected.get(table, 0)))


def backup_restore(*, backup: Path, url: str, files_to: Path | None) -> dict:
    """Restore the set into the empty database at `url` (and its kept files into
    `files_to`, unless None), then check the rows against the manifest. A set that is not
    whole, or a target that holds tables, is refused with nothing changed."""
    manifest = backup_check(backup)
    target = make_url(url)
    kind, facts = _kind(target), manifest["database"]
    if kind != facts["kind"]:
        raise DomainError("wrong_kind", ERR_WRONG_KIND.format(backup=facts["kind"], target=kind))
    tables = sqlite.sqlite_tables(target) if kind == "sqlite" else postgres.pg_tables(target)
    if tables:
        raise DomainError("target_not_empty", ERR_NOT_EMPTY.format(
            where=where(target), count=len(tables), names=", ".join(tables[:3]) +
            (", …" if len(tables) > 3 else "")))
    existed = kind == "sqlite" and sqlite.sqlite_path(target).exists()
    try:
        found = (sqlite.sqlite_restore(backup, facts, target) if kind == "sqlite"
                 else postgres.pg_restore(backup, facts, target))
        _counts_match(manifest["tables"], found, ERR_RESTORED_COUNTS, "restore_mismatch")
    except BaseException:
        _undo(target, kind, existed)
        raise
    restored = _files_restore(backup, manifest["kept_files"], files_to)
    return {"tables": len(found), "rows": sum(found.values()), "files": restored,
            "alembic_revision": manifest.get("alembic_revision"),
            "app_version": manifest.get("app_version"), "created_at": manifest["created_at"]}


def _undo(target: URL, kind: str, existed: bool) -> None:
    """Leave the target as the restore found it: empty (or, for SQLite, not there)."""
    if kind == "postgresql":
        postgres.pg_empty(target)
        return
    path = sqlite.sqlite_path(target)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    if existed:
        path.write_bytes(b"")
    else:
        path.unlink(missing_ok=True)


def _files_restore(backup: Path, kept: dict[str, str], folder: Path | None) -> list[str]:
    """Put the kept files in `folder` (mode 600), each whole or not at all; a different
    file already there is kept beside it as <name>.before-restore."""
    if folder is None:
        return []
    folder_private(folder)
    restored = []
    for name, place in sorted(kept.items()):
        target = folder / Path(name).name  # a manifest names files, never other folders
        if target.is_file() and target.read_bytes() != (backup / place).read_bytes():
            os.replace(target, target.with_name(target.name + ".before-restore"))
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".restore-")
        with os.fdopen(fd, "wb") as fh:
            fh.write((backup / place).read_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
        restored.append(str(target))
    return restored


def backup_sets(folder: Path) -> list[Path]:
    """The whole backup sets in `folder` (a manifest each), oldest first."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.name.startswith(SET_PREFIX)
                  and (path / "manifest.json").is_file())


def backups_prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` sets in `folder` (never fewer than one); those gone."""
    gone = backup_sets(folder)[:-max(1, keep)]
    for path in gone:
        shutil.rmtree(path)
    return gone
