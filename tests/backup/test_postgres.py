"""`kiosk backup` and `kiosk restore` on PostgreSQL: a source and a target database of their
own on the test server, dropped afterwards. Skipped, with the reason, only where the server
or pg_dump cannot be reached; on CI (CI=true) that fails instead."""

import json
import os
import secrets
import shutil
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from kiosk import create_app
from kiosk.cli import main
from kiosk.core.backup.postgres import pg_tool
from kiosk.core.errors import DomainError
from kiosk.extensions import db
from tests.support.database import reachable_problem

from .helpers import Writer, audit_insert, clinic_fill, snapshot_matches, table_rows

SERVER = os.environ.get("KIOSK_TEST_DATABASE_URL") or \
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL backups cannot be tested on CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def databases():
    """make() → the URL of a new, empty database; all dropped at the end."""
    problem = reachable_problem(SERVER)
    if problem:
        _unavailable(f"PostgreSQL unreachable at {make_url(SERVER).host}: {problem}")
    if not shutil.which("pg_dump") or not shutil.which("pg_restore"):
        _unavailable("pg_dump or pg_restore not installed (apt install postgresql-client)")
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    made = []

    def make(label: str) -> str:
        name = f"kiosk_backup_{label}_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(SERVER).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_clinic(databases, tmp_path):
    """An application on a database of its own holding the demo clinic and a PDF."""
    url = databases("source")
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url,
                                 "KIOSK_JOBS_FILE": str(tmp_path / "jobs.db"),
                                 "SECRET_KEY": secrets.token_urlsafe(32)})
    with app.app_context():
        db.create_all()
        clinic_fill()
        db.session.remove()
        yield app
        db.engine.dispose()


def _cli(app, *args):
    return app.test_cli_runner().invoke(main, list(args))


def test_a_postgresql_backup_made_while_the_app_writes_restores_whole(pg_clinic, databases,
                                                                      tmp_path):
    url = pg_clinic.config["SQLALCHEMY_DATABASE_URI"]
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as held, Writer(url) as writer:
        transaction = held.begin()
        audit_insert(held, "uncommitted during the backup")
        made = _cli(pg_clinic, "backup", "--to", str(tmp_path))
        transaction.commit()
        while writer.written < writer.before + 20:
            writer.stop.wait(0.01)
    engine.dispose()
    assert made.exit_code == 0, made.output
    backup = json.loads(made.output.strip().splitlines()[-1])["backup"]
    manifest = json.loads(open(os.path.join(backup, "manifest.json")).read())
    assert manifest["database"]["kind"] == "postgresql"
    assert sorted(manifest["files"]) == ["database.pgdump"]  # the key came in the settings
    target = databases("restored")

    restored = _cli(pg_clinic, "restore", backup, "--database-url", target)

    assert restored.exit_code == 0, restored.output
    source, copy = table_rows(url), table_rows(target)
    snapshot_matches(source, copy, manifest)
    assert len(copy["audit_entries"]) < len(source["audit_entries"])
    assert "uncommitted during the backup" not in repr(copy["audit_entries"])


def test_a_postgresql_target_that_holds_tables_is_refused_and_unchanged(pg_clinic,
                                                                        databases, tmp_path):
    made = _cli(pg_clinic, "backup", "--to", str(tmp_path))
    backup = json.loads(made.output.strip().splitlines()[-1])["backup"]
    target = databases("busy")
    engine = create_engine(target, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id serial PRIMARY KEY, body text)"))
        conn.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
    engine.dispose()

    result = _cli(pg_clinic, "restore", backup, "--database-url", target)

    assert result.exit_code == 1
    assert "already holds 1 tables (notes)" in result.output
    assert table_rows(target) == {"notes": [(1, "kept")]}


def test_a_damaged_dump_is_refused_before_the_target_is_touched(pg_clinic, databases,
                                                                tmp_path):
    made = _cli(pg_clinic, "backup", "--to", str(tmp_path))
    backup = json.loads(made.output.strip().splitlines()[-1])["backup"]
    manifest_path = os.path.join(backup, "manifest.json")
    manifest = json.loads(open(manifest_path).read())
    manifest["tables"]["patients"] -= 1
    with open(manifest_path, "w") as fh:
        json.dump(manifest, fh)
    target = databases("target")

    result = _cli(pg_clinic, "restore", backup, "--database-url", target)

    assert result.exit_code == 1
    assert "The backup does not match its manifest: the dump holds" not in result.output
    assert "does not match its manifest: patients holds" in result.output
    assert table_rows(target) == {}


def test_a_password_in_the_database_url_is_never_printed_or_written(pg_clinic, tmp_path):
    url = make_url(pg_clinic.config["SQLALCHEMY_DATABASE_URI"]).set(password="pw-0f-the-db")
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url.render_as_string(False),
                                 "KIOSK_JOBS_FILE": str(tmp_path / "jobs2.db")})

    result = _cli(app, "backup", "--to", str(tmp_path))

    assert result.exit_code == 0, result.output  # the test server trusts: any password
    assert "pw-0f-the-db" not in result.output
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert b"pw-0f-the-db" not in path.read_bytes(), path


def test_a_pg_dump_older_than_the_server_is_named_with_what_to_install():
    with pytest.raises(DomainError) as refused:
        pg_tool("pg_dump", 99)

    assert refused.value.message.startswith("pg_dump ")
    assert "is older than the PostgreSQL 99 server" in refused.value.message
    assert "install postgresql-client-99" in refused.value.message
