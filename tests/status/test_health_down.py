"""Health checks when what the server needs is down: a clear 503 within seconds, naming
it, and never a hung request."""

import socket
import threading
import time

import pytest

from kiosk import create_app
from tests.support.server import free_port


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _app(tmp_path, **overrides):
    return create_app("testing", {"KIOSK_JOBS_FILE": str(tmp_path / "jobs.db"),
                                  "KIOSK_STATUS_CHECK_TIMEOUT_S": "2", **overrides})


def _timed_get(client, path):
    started = time.monotonic()
    answer = client.get(path)
    return answer, time.monotonic() - started


@pytest.mark.parametrize("kind", ["refused", "hanging"])
def test_a_database_down_answers_503_quickly_naming_it(tmp_path, silent_server, kind):
    port = free_port() if kind == "refused" else silent_server
    app = _app(tmp_path, SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://kiosk:s3cret-pw@"
                                                 f"127.0.0.1:{port}/kiosk")
    client = app.test_client()
    for path in ("/readyz", "/status.json", "/status"):
        answer, seconds = _timed_get(client, path)
        assert answer.status_code == 503, (path, answer.data)
        assert seconds < 5, (path, seconds)
        text = answer.get_data(as_text=True)
        assert "s3cret-pw" not in text and "Traceback" not in text and str(port) not in text
    readyz = client.get("/readyz").json
    assert readyz["status"] == "down" and readyz["down"] == ["database"]
    status = client.get("/status.json").json
    assert status["status"] == "down" and status["checks"]["database"]["state"] == "down"
    assert status["maintenance"] is None and status["incidents"] is None
    page = client.get("/status").get_data(as_text=True)
    assert "Not working" in page and "cannot be read while the database is down" in page
    assert client.get("/healthz").status_code == 200  # the process itself is alive


def test_a_hanging_check_is_not_started_again_while_it_waits(tmp_path, silent_server):
    app = _app(tmp_path, SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://kiosk@127.0.0.1:"
                                                 f"{silent_server}/kiosk",
               KIOSK_STATUS_CHECK_TIMEOUT_S="0.5")
    client = app.test_client()
    first = client.get("/readyz").json["checks"]["database"]
    assert first["state"] == "down" and "Did not answer within 0.5 s" in first["reason"]
    second = client.get("/readyz").json["checks"]["database"]
    assert second["state"] == "down" and "still waiting" in second["reason"]
    threads = [t for t in threading.enumerate() if t.name == "health-database"]
    assert len(threads) == 1


def test_redis_down_when_configured_answers_503_naming_it(app, client):
    app.config["KIOSK_REDIS_URL"] = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    answer, seconds = _timed_get(client, "/readyz")
    assert answer.status_code == 503 and seconds < 5
    assert answer.json["down"] == ["redis"]
    assert answer.json["checks"]["database"]["state"] == "ok"
    assert "hunter2" not in answer.get_data(as_text=True)


def test_redis_that_answers_is_ok(app, client):
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis on 127.0.0.1:6379 unreachable: {exc}")
    app.config["KIOSK_REDIS_URL"] = "redis://127.0.0.1:6379/15"
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json
    assert answer.json["checks"]["redis"]["state"] == "ok"


@pytest.fixture
def sqlite_app(tmp_path):
    """An application on an SQLite file with its tables, whose pool already holds a
    connection (as on a server that has been answering for a while)."""
    from kiosk.extensions import db

    app = _app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'kiosk.db'}")
    with app.app_context():
        db.create_all()
        yield app, tmp_path / "kiosk.db"
        db.session.remove()
        db.engine.dispose()


def test_an_sqlite_file_turned_to_garbage_is_down(sqlite_app):
    import sqlite3

    app, path = sqlite_app
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    with sqlite3.connect(path) as conn:  # everything into the file, then spoil it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(path, "r+b") as fh:
        fh.write(b"not a database, only garbage " * 200)
    answer = client.get("/readyz")
    assert answer.status_code == 503, answer.json
    assert answer.json["down"] == ["database"]
    assert client.get("/status.json").json["checks"]["database"]["state"] == "down"


def test_an_sqlite_file_gone_or_empty_is_down(sqlite_app):
    app, path = sqlite_app
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    gone = client.get("/readyz")
    assert gone.status_code == 503 and gone.json["down"] == ["database"], gone.json
    assert not path.exists()  # the check made no empty file in its place
    path.touch()  # an empty file: no tables, nothing the server could work with
    empty = client.get("/readyz")
    assert empty.status_code == 503 and empty.json["down"] == ["database"], empty.json
    assert "no tables" in empty.json["checks"]["database"]["reason"]
