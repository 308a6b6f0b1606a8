"""`kiosk backup` and `kiosk restore` on SQLite, through the real commands."""

import json
import os
import sqlite3

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from kiosk.cli import main

from .helpers import PDF, Writer, audit_insert, files_of, snapshot_matches, table_rows


def _backup(app, folder):
    return app.test_cli_runner().invoke(main, ["backup", "--to", str(folder)])


def _restore(app, backup, *args):
    return app.test_cli_runner().invoke(main, ["restore", str(backup), *args])


def _made(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_a_backup_made_while_the_app_writes_restores_into_a_fresh_file_whole(sqlite_clinic,
                                                                              tmp_path):
    app, url = sqlite_clinic, sqlite_clinic.config["SQLALCHEMY_DATABASE_URI"]
    folder = tmp_path / "backups"
    folder.mkdir()
    with Writer(url) as writer:
        made = _made(_backup(app, folder))
        while writer.written < writer.before + 20:  # and carries on after it
            writer.stop.wait(0.01)

    backup = folder / os.path.basename(made["backup"])
    assert [p.name for p in folder.iterdir()] == [backup.name]  # nothing else left behind
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["database"]["kind"] == "sqlite" and manifest["app_version"]
    assert manifest["created_at"].endswith("Z") and manifest["kept_files"] == {
        "secret_key": "files/secret_key"}
    assert sorted(manifest["files"]) == ["database.sqlite3", "files/secret_key"]
    assert oct(os.stat(backup).st_mode & 0o777) == "0o700"

    target, files_to = tmp_path / "restored.db", tmp_path / "restored-instance"
    restored = _restore(app, backup, "--database-url", f"sqlite:///{target}",
                        "--files-to", str(files_to))

    assert restored.exit_code == 0, restored.output
    assert "every table's count matches" in restored.output
    source, copy = table_rows(url), table_rows(f"sqlite:///{target}")
    snapshot_matches(source, copy, manifest)
    assert len(copy["audit_entries"]) < len(source["audit_entries"])
    assert any(PDF in row for row in copy["documents"])
    assert files_of(files_to) == {"secret_key": app.config["SECRET_KEY"].encode()}
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_transaction_open_while_the_backup_runs_is_not_in_it_and_is_not_blocked(
        sqlite_clinic, tmp_path):
    """A writer holding SQLite's write lock (WAL) neither blocks the backup nor gets its
    uncommitted row into it, and commits afterwards as usual."""
    url = sqlite_clinic.config["SQLALCHEMY_DATABASE_URI"]
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as held:
        transaction = held.begin()
        audit_insert(held, "uncommitted during the backup")
        made = _made(_backup(sqlite_clinic, tmp_path))
        transaction.commit()
    engine.dispose()
    target = tmp_path / "restored.db"

    _made(_restore(sqlite_clinic, made["backup"], "--database-url", f"sqlite:///{target}"))

    assert "uncommitted during the backup" not in repr(table_rows(f"sqlite:///{target}"))
    assert "uncommitted during the backup" in repr(table_rows(url)["audit_entries"])


def test_a_restore_into_a_database_that_holds_tables_is_refused_and_changes_nothing(
        sqlite_clinic, tmp_path):
    backup = _made(_backup(sqlite_clinic, tmp_path))["backup"]
    target = tmp_path / "busy.db"
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('kept')")
    before = target.read_bytes()

    result = _restore(sqlite_clinic, backup, "--database-url", f"sqlite:///{target}",
                      "--files-to", str(tmp_path / "files"))

    assert result.exit_code == 1
    assert "Nothing was restored" in result.output
    assert f"The target database {target} already holds 1 tables (notes)" in result.output
    assert target.read_bytes() == before
    assert not (tmp_path / "files").exists()


def test_a_restore_into_the_configured_database_puts_the_secret_key_back(sqlite_clinic,
                                                                        tmp_path):
    """A new installation (its own fresh key) restored: the clinic's key comes back, the
    new one is kept beside it."""
    from tests.support.database import app_on_fresh_database

    from .conftest import instance_make

    backup = _made(_backup(sqlite_clinic, tmp_path))["backup"]
    with app_on_fresh_database(None, tmp_path / "new.db",
                               {"SECRET_KEY": "a-new-installation"}) as fresh:
        from kiosk.extensions import db

        db.drop_all()  # a new installation's file, before `kiosk db upgrade`
        instance = instance_make(fresh, tmp_path / "new-instance")
        result = _restore(fresh, backup)

    assert result.exit_code == 0, result.output
    assert (instance / "secret_key").read_text() == sqlite_clinic.config["SECRET_KEY"]
    assert (instance / "secret_key.before-restore").read_text() == "a-new-installation"
    assert table_rows(f"sqlite:///{tmp_path / 'new.db'}")["patients"] == \
        table_rows(sqlite_clinic.config["SQLALCHEMY_DATABASE_URI"])["patients"]
