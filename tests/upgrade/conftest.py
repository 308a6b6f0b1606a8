"""Upgrade tests: databases of their own (SQLite files, and a fresh PostgreSQL database
when a server is reachable) so a newer migration never reaches another test's schema."""

import os
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ..support.database import reachable_problem

# The PostgreSQL server to make fresh databases on: the tests' one, else the usual local one.
PG_SERVER = os.environ.get("KIOSK_TEST_DATABASE_URL") or \
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin_engine():
    return create_engine(make_url(PG_SERVER).set(database="postgres"),
                         isolation_level="AUTOCOMMIT")


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request, tmp_path):
    """The URL of an empty database: an SQLite file, or a new PostgreSQL database dropped
    afterwards (skipped with the reason when no server answers; failed on CI)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    problem = reachable_problem(str(make_url(PG_SERVER).set(database="postgres")
                                    .render_as_string(hide_password=False)))
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable on CI: {problem}")
        pytest.skip(f"PostgreSQL unreachable ({problem})")
    name = f"kiosk_upgrade_{secrets.token_hex(4)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
