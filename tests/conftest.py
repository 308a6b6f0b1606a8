"""Fixtures: a fresh database per test (SQLite, or PostgreSQL with KIOSK_TEST_DATABASE_URL)."""

import os

import pytest

from kiosk import create_app
from kiosk.extensions import db

from . import factories
from .support.database import PG_URL, app_on_fresh_database, reachable_problem


@pytest.fixture(scope="session")
def server_database():
    """The configured PostgreSQL URL with a clean schema, or None for per-test SQLite."""
    if not PG_URL:
        yield None
        return
    problem = reachable_problem(PG_URL)
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable on CI: {problem}")
        pytest.skip(f"PostgreSQL unreachable ({problem}); set up the server or unset "
                    "KIOSK_TEST_DATABASE_URL")
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": PG_URL})
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield PG_URL


@pytest.fixture(autouse=True)
def _clock_per_test():
    """With KIOSK_CLOCK_START set (CI's midnight run) every test starts at that instant;
    without it, the wall clock. Either way a test's clock changes end with the test."""
    from kiosk.core import clock

    clock.start_from_environment()
    yield
    clock.set_source(None)
    clock.start_from_environment()


@pytest.fixture
def frozen_clock():
    """The clock held still: frozen_clock.set(dt), frozen_clock.advance(minutes=5)."""
    from datetime import UTC, datetime

    from kiosk.core import clock

    with clock.frozen(datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) as held:
        yield held


@pytest.fixture
def app(server_database, tmp_path):
    """An application on a fresh, empty database."""
    with app_on_fresh_database(server_database, tmp_path / "test.db") as application:
        yield application


@pytest.fixture
def client(app):
    """A test client for `app`."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A command-line runner for `app`."""
    return app.test_cli_runner()


@pytest.fixture
def clinic(app):
    """A small clinic: settings, a ward with its board, and one user of each level."""
    return factories.clinic_make()


@pytest.fixture
def login(client):
    """Sign `user` in on the test client: login(user)."""

    def sign_in(user):
        from kiosk.core.auth import SESSION_KEY
        from kiosk.extensions import db
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=user, auth="password")  # kept on the server
        db.session.commit()
        with client.session_transaction() as session:
            session["user_id"] = user.id
            session[SESSION_KEY] = key
            session["auth"] = "password"
        return user

    return sign_in


@pytest.fixture
def socketio_client(app, client):
    """Connect a Socket.IO test client sharing `client`'s cookies: socketio_client(auth=…)."""
    from kiosk.extensions import socketio

    made = []

    def connect(auth=None):
        sio = socketio.test_client(app, flask_test_client=client, auth=auth)
        made.append(sio)
        return sio

    yield connect
    for sio in made:
        if sio.is_connected():
            sio.disconnect()
