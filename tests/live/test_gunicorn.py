"""The documented production path: gunicorn, one gthread worker, serving pages and live pokes."""

import importlib.util

import pytest

from .helpers import complete_task, needs, open_task, session_cookie

# Real server processes on their own SQLite files: run once, not again per database.
pytestmark = pytest.mark.servers


@pytest.fixture
def gunicorn_ready():
    """Skip (or on CI fail) when gunicorn is not installed."""
    needs("gunicorn", None if importlib.util.find_spec("gunicorn")
          else "not installed (pip install gunicorn)")


def test_gunicorn_serves_pages_and_pokes(gunicorn_ready, kiosk_servers, poke_listener):
    server = kiosk_servers("gunicorn", gunicorn_threads=50)
    tech = server.signed_in("tech", "tech-demo-1")
    assert tech.get(f"{server.base_url}/login", timeout=10).status_code == 200
    patient, board, task = open_task(server)
    viewer = poke_listener(server.base_url, cookie=session_cookie(tech))
    assert viewer.join(f"board:{board}", f"sheet:{patient}")["refused"] == []

    response = complete_task(tech, server.base_url, task)

    assert response.status_code == 200, response.text[:500]
    assert viewer.wait_for(topic="board", board=board, patient=patient), \
        f"no board poke through gunicorn; heard {viewer.pokes}\n{server.log_text()[-3000:]}"
    assert viewer.wait_for(topic="sheet", patient=patient)
    assert "gunicorn" in server.log_text().lower()


def test_gunicorn_processes_joined_by_redis(gunicorn_ready, redis_url, redis_channel,
                                            kiosk_servers, poke_listener):
    redis = {"KIOSK_REDIS_URL": redis_url, "KIOSK_REDIS_CHANNEL": redis_channel}
    first = kiosk_servers("gunicorn-a", env=redis, gunicorn_threads=20)
    second = kiosk_servers("gunicorn-b", env=redis, gunicorn_threads=20)
    patient, board, task = open_task(first)
    viewer = poke_listener(first.base_url,
                           cookie=session_cookie(first.signed_in("vet", "vet-demo-1")))
    assert viewer.join(f"board:{board}", f"sheet:{patient}")["refused"] == []

    response = complete_task(second.signed_in("tech", "tech-demo-1"), second.base_url, task)

    assert response.status_code == 200, response.text[:500]
    assert viewer.wait_for(topic="board", board=board, patient=patient), \
        f"no poke across gunicorn processes; heard {viewer.pokes}"
    assert viewer.wait_for(topic="sheet", patient=patient)
