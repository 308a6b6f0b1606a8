"""A job queue on the Redis server of the tests, with a name of its own: skipped when
Redis is unreachable, failed instead on CI (where Redis always runs)."""

import os
import secrets
from contextlib import contextmanager

import pytest

REDIS_URL = os.environ.get("KIOSK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_problem() -> str | None:
    """Why Redis cannot be used, or None when it answers."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


@contextmanager
def redis_queue_settings(prefix: str):
    """Settings (KIOSK_REDIS_URL, channel, queue name) for a queue of the caller's alone;
    its keys are deleted afterwards."""
    problem = redis_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable on CI: {problem}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({problem})")
    name = f"{prefix}_{secrets.token_hex(6)}"
    yield {"KIOSK_REDIS_URL": REDIS_URL, "KIOSK_REDIS_CHANNEL": f"{prefix}-{name}",
           "KIOSK_JOBS_NAME": name}
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = client.keys(f"huey.*.{name}*")  # huey keeps "_" in its key names
    if keys:
        client.delete(*keys)
    client.close()
