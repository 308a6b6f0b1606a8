"""Helpers of the live-update tests: a listening Socket.IO client, a demo clinic's open task,
completing it as the sheet does; skipping (or failing on CI) without a server they need."""

import os
import threading
import time

import pytest

from ..support.server import KioskServer

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


def needs(what: str, problem: str | None) -> None:
    """Skip (or on CI fail) when a server or package a test needs is missing."""
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is required on CI: {problem}")
        print(f"\nskipped: {what} unavailable ({problem})")
        pytest.skip(f"{what} unavailable: {problem}")


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


def complete_task(session, base_url: str, task_uid: str):
    """Complete a task through the sheet's form, as htmx posts it."""
    return session.post(f"{base_url}/tasks/{task_uid}/complete", timeout=15,
                        data={"value": "1", "note": "from a live test"},
                        headers={"HX-Request": "true"})
