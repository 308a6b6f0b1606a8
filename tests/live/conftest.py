"""Fixtures for live updates across real server processes: Redis, servers, listening clients.

Tests here that need Redis are skipped with the reason printed when it is unreachable;
on CI (the CI variable set) they fail instead. Each test gets its own Redis channel, so
runs in parallel never hear each other.
"""

import secrets
from pathlib import Path

import pytest

from ..support.queues import REDIS_URL, redis_problem
from ..support.server import KioskServer
from .helpers import PokeListener, needs


@pytest.fixture(scope="session")
def redis_url():
    """The URL of a reachable Redis (KIOSK_TEST_REDIS_URL, else 127.0.0.1:6379/0)."""
    needs(f"Redis at {REDIS_URL}", redis_problem())
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
