"""Backups refused: a folder that is missing or cannot be written, a database that cannot
be read, a backup set that is not whole. Each says why and leaves nothing changed."""

import json
from datetime import timedelta

import pytest

from kiosk.cli import main
from kiosk.core import clock

from .helpers import files_of


def _cli(app, *args):
    return app.test_cli_runner().invoke(main, list(args))


def _backup_set(app, folder):
    folder.mkdir(exist_ok=True)
    result = _cli(app, "backup", "--to", str(folder))
    assert result.exit_code == 0, result.output
    return folder / json.loads(result.output.strip().splitlines()[-1])["backup"].split("/")[-1]


def test_a_backup_to_a_missing_folder_is_refused_and_makes_no_folder(sqlite_clinic, tmp_path):
    missing = tmp_path / "usb-drive" / "kiosk"

    result = _cli(sqlite_clinic, "backup", "--to", str(missing))

    assert result.exit_code == 1
    assert f"No backup was made. The backup folder {missing} does not exist" in result.output
    assert not (tmp_path / "usb-drive").exists()


def test_a_backup_to_a_place_that_cannot_be_written_is_refused(sqlite_clinic, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = files_of(tmp_path)

    as_folder = _cli(sqlite_clinic, "backup", "--to", str(blocker))
    beneath = _cli(sqlite_clinic, "backup", "--to", str(blocker / "backups"))

    assert as_folder.exit_code == 1 and beneath.exit_code == 1
    assert "No backup was made. The backup folder" in as_folder.output
    assert "No backup was made. The backup folder" in beneath.output
    assert sorted(files_of(tmp_path)) == sorted(before)
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(__import__("os").geteuid() == 0,
                    reason="root writes into a read-only folder; the case above covers it")
def test_a_backup_to_a_read_only_folder_is_refused(sqlite_clinic, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)

    result = _cli(sqlite_clinic, "backup", "--to", str(folder))

    assert result.exit_code == 1 and "Cannot write in the backup folder" in result.output
    assert list(folder.iterdir()) == []


def test_a_backup_that_fails_halfway_leaves_nothing_behind(tmp_path):
    """A database file SQLite cannot read: the work folder made for the set is removed."""
    from tests.support.database import app_on_fresh_database

    with app_on_fresh_database(None, tmp_path / "broken.db") as app:
        pass
    (tmp_path / "broken.db").write_bytes(b"this is not an SQLite database" * 200)
    for extra in ("broken.db-wal", "broken.db-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    folder = tmp_path / "backups"
    folder.mkdir()

    result = _cli(app, "backup", "--to", str(folder))

    assert result.exit_code == 1
    assert "No backup was made. SQLite could not read" in result.output
    assert list(folder.iterdir()) == []


def _damage_missing_database(backup):
    (backup / "database.sqlite3").unlink()


def _damage_cut_short(backup):
    data = (backup / "database.sqlite3").read_bytes()
    (backup / "database.sqlite3").write_bytes(data[: len(data) // 2])


def _damage_missing_key(backup):
    (backup / "files" / "secret_key").unlink()


def _damage_counts(backup):
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["tables"]["patients"] += 1
    (backup / "manifest.json").write_text(json.dumps(manifest))


def _damage_manifest_gone(backup):
    (backup / "manifest.json").unlink()


def _damage_manifest_garbled(backup):
    (backup / "manifest.json").write_text('{"format": 1, "tables": ')


def _damage_extra_file(backup):
    (backup / "files" / "stray.txt").write_text("not from the backup")


DAMAGE = {
    "database file missing": (_damage_missing_database, "is incomplete: database.sqlite3 is "
                                                        "missing"),
    "database cut short": (_damage_cut_short, "database.sqlite3 does not match the checksum"),
    "secret key missing": (_damage_missing_key, "is incomplete: files/secret_key is missing"),
    "counts edited": (_damage_counts, "does not match its manifest: patients holds"),
    "manifest missing": (_damage_manifest_gone, "is not a Kiosk backup: it has no manifest"),
    "manifest garbled": (_damage_manifest_garbled, "manifest.json cannot be read"),
    "a file not in the manifest": (_damage_extra_file, "holds files/stray.txt, which its "
                                                       "manifest does not list"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_an_incomplete_or_damaged_backup_is_refused_and_the_target_is_untouched(
        sqlite_clinic, tmp_path, damage):
    backup = _backup_set(sqlite_clinic, tmp_path / "backups")
    spoil, message = DAMAGE[damage]
    spoil(backup)
    target = tmp_path / "target.db"
    files_to = tmp_path / "files-to"
    files_to.mkdir()
    (files_to / "secret_key").write_text("the key in place")

    result = _cli(sqlite_clinic, "restore", str(backup), "--database-url",
                  f"sqlite:///{target}", "--files-to", str(files_to))

    assert result.exit_code == 1, result.output
    assert "Nothing was restored." in result.output and message in result.output
    assert not target.exists()
    assert files_of(files_to) == {"secret_key": b"the key in place"}


def test_a_restore_into_another_kind_of_database_is_refused(sqlite_clinic, tmp_path):
    backup = _backup_set(sqlite_clinic, tmp_path / "backups")

    result = _cli(sqlite_clinic, "restore", str(backup), "--database-url",
                  "postgresql+psycopg://kiosk:pw-not-shown@127.0.0.1:1/none")

    assert result.exit_code == 1
    assert "This backup is of a sqlite database: restore it into a sqlite database, not a " \
           "postgresql one." in result.output
    assert "pw-not-shown" not in result.output


def test_the_daily_backup_keeps_the_newest_sets_and_waits_a_day(sqlite_clinic, tmp_path,
                                                                 frozen_clock):
    """With KIOSK_BACKUP_DIR set the queue's hourly look makes a set once a day and keeps
    KIOSK_BACKUP_KEEP of them; without it, nothing."""
    from kiosk.core.backup.daily import backup_daily
    from kiosk.core.backup.sets import backup_sets
    from kiosk.core.jobs import EXTENSION, jobs_run_pending

    folder = tmp_path / "daily"
    folder.mkdir()
    assert "backup" in sqlite_clinic.extensions[EXTENSION].periodic
    assert backup_daily() == {}  # no KIOSK_BACKUP_DIR: no backup
    sqlite_clinic.config.update(KIOSK_BACKUP_DIR=str(folder), KIOSK_BACKUP_KEEP="2")
    made = []
    for _day in range(3):
        engine = sqlite_clinic.extensions[EXTENSION]
        engine.huey.enqueue(engine.tasks["backup"].s())
        assert jobs_run_pending() >= 1  # the demo clinic's own jobs may run alongside
        made.append(backup_sets(folder)[-1].name)
        frozen_clock.advance(hours=22)
        assert backup_daily() == {}  # not a day yet
        frozen_clock.advance(hours=1)

    assert len(set(made)) == 3
    assert [p.name for p in backup_sets(folder)] == made[1:]  # the oldest removed
    assert made[0] == f"kiosk-backup-{clock.utcnow() - timedelta(hours=69):%Y%m%dT%H%M%SZ}"
