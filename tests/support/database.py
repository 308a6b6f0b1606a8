"""The test databases: PostgreSQL when KIOSK_TEST_DATABASE_URL names one, else SQLite files."""

import os
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from kiosk import create_app
from kiosk.extensions import db

PG_URL = os.environ.get("KIOSK_TEST_DATABASE_URL")


def reachable_problem(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@contextmanager
def app_on_fresh_database(server_database, sqlite_file, overrides=None):
    """An application (its context pushed) on `server_database`, emptied afterwards, or on
    a new SQLite file; `overrides` are more settings for it."""
    url = server_database or f"sqlite:///{sqlite_file}"
    # The job queue's file beside it: a test's queue starts empty, on PostgreSQL too.
    jobs = sqlite_file.with_name(f"{sqlite_file.stem}-jobs.db")
    application = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url,
                                         "KIOSK_JOBS_FILE": str(jobs), **(overrides or {})})
    with application.app_context():
        if server_database is None:
            db.create_all()
        yield application
        db.session.remove()
        if server_database is not None:
            names = ", ".join(t.name for t in reversed(db.metadata.sorted_tables))
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        db.engine.dispose()
