"""Fixtures for live updates across real server processes: Redis, servers, listening clients.

Tests here that need Redis are skipped with the reason printed when it is unreachable;
on CI (the CI variable set) they fail instead. Each test gets its own Redis channel, so
runs in parallel never hear each other.
"""

import os
import secrets
import threading
import time
from pathlib import Path

import pytest

from ..e2e.server import KioskServer

REDIS_URL = os.environ.get("KIOSK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POKE_TIMEOUT = 5.0
# One admitted patient's open task, its ward board, on the demo clinic.
OPEN_TASK_SQL = """
    SELECT p.uid, b.id, t.uid
    FROM tasks t
    JOIN orders o ON o.id = t.order_id
    JOIN patients p ON p.id = t.patient_id
    JOIN boards b ON b.ward_id = p.ward_id AND b.kind = 'ward'
    WHERE t.status = 'scheduled' AND o.status = 'active' AND p.status = 'admitted'
    ORDER BY t.due_at, t.id
    LIMIT 1
"""


def _redis_problem(url: str) -> str | None:
    """None when Redis answers a PING, else why not."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def needs(what: str, problem: str | None) -> None:
    """Skip (or on CI fail) when a server or package a test needs is missing."""
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is required on CI: {problem}")
        print(f"\nskipped: {what} unavailable ({problem})")
        pytest.skip(f"{what} unavailable: {problem}")


@pytest.fixture(scope="session")
def redis_url():
    """The URL of a reachable Redis (KIOSK_TEST_REDIS_URL, else 127.0.0.1:6379/0)."""
    needs(f"Redis at {REDIS_URL}", _redis_problem(REDIS_URL))
    return REDIS_URL


@pytest.fixture
def redis_channel():
    """A pub/sub channel of this test alone."""
    return f"kiosk-test-{secrets.token_hex(6)}"


@pytest.fixture
def kiosk_servers(tmp_path):
    """Start real servers sharing one database: `start(name, env=..., first=True)`.

    The first server made prepares the schema and the demo clinic; the others share its
    database and secret key. Every server is stopped at the end of the test.
    """
    started: list[KioskServer] = []

    def start(name: str, *, env: dict | None = None, gunicorn_threads: int = 0
              ) -> KioskServer:
        shared = started[0].shared_env() if started else {}
        server = KioskServer(Path(tmp_path), name=name, env={**shared, **(env or {})},
                             gunicorn_threads=gunicorn_threads)
        started.append(server)
        try:
            if len(started) == 1:
                server.prepare()
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc))
        return server

    yield start
    for server in started:
        server.stop()


def open_task(server: KioskServer) -> tuple[str, int, str]:
    """(patient uid, ward board id, task uid) of an open task on the demo clinic."""
    rows = server.query(OPEN_TASK_SQL)
    assert rows, "the demo clinic has no open task"
    return rows[0]


def session_cookie(session) -> str:
    """The Cookie header that carries a `requests` session's sign-in to Socket.IO."""
    return f"session={session.cookies['session']}"


class PokeListener:
    """A python-socketio client that keeps every poke it hears, with the time heard."""

    def __init__(self, base_url: str, *, cookie: str | None = None, token: str | None = None):
        import socketio

        self.pokes: list[tuple[float, dict]] = []
        self._changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("poke", self._on_poke)
        self.sio.connect(base_url, headers={"Cookie": cookie} if cookie else {},
                         auth={"token": token} if token else None,
                         transports=["websocket"], wait_timeout=10)

    def _on_poke(self, data) -> None:
        with self._changed:
            self.pokes.append((time.monotonic(), data))
            self._changed.notify_all()

    def join(self, *rooms: str) -> dict:
        """Ask to join rooms; the server's answer {"joined", "refused"}."""
        return self.sio.call("join", {"rooms": list(rooms)}, timeout=10)

    def wait_for(self, timeout: float = POKE_TIMEOUT, **fields) -> dict | None:
        """The first poke whose fields equal these, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for _, poke in self.pokes:
                    if all(poke.get(key) == value for key, value in fields.items()):
                        return poke
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def close(self) -> None:
        """Disconnect."""
        if self.sio.connected:
            self.sio.disconnect()


@pytest.fixture
def poke_listener():
    """Connect listening clients: `poke_listener(base_url, cookie=...)`; closed afterwards."""
    listeners: list[PokeListener] = []

    def connect(base_url: str, **credentials) -> PokeListener:
        listener = PokeListener(base_url, **credentials)
        listeners.append(listener)
        return listener

    yield connect
    for listener in listeners:
        listener.close()


def complete_task(session, base_url: str, task_uid: str):
    """Complete a task through the sheet's form, as htmx posts it."""
    return session.post(f"{base_url}/tasks/{task_uid}/complete", timeout=15,
                        data={"value": "1", "note": "from a live test"},
                        headers={"HX-Request": "true"})
