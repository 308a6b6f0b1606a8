"""Live updates across real server processes: Redis joins them; without it each goes alone."""

import time

import pytest

from ..support.server import free_port
from .helpers import complete_task, open_task, session_cookie

# Real server processes on their own SQLite files: run once, not again per database.
pytestmark = pytest.mark.servers

REDIS_ERRORS = ("Cannot publish to redis", "Cannot receive from redis")


def test_a_change_on_one_process_pokes_clients_of_another(kiosk_servers, redis_url,
                                                          redis_channel, poke_listener):
    redis = {"KIOSK_REDIS_URL": redis_url, "KIOSK_REDIS_CHANNEL": redis_channel}
    first = kiosk_servers("a", env=redis)
    second = kiosk_servers("b", env=redis)
    patient, board, task = open_task(first)
    viewer = poke_listener(first.base_url,
                           cookie=session_cookie(first.signed_in("vet", "vet-demo-1")))
    ack = viewer.join(f"board:{board}", f"sheet:{patient}")
    assert ack == {"joined": [f"board:{board}", f"sheet:{patient}"], "refused": []}

    response = complete_task(second.signed_in("tech", "tech-demo-1"), second.base_url, task)

    assert response.status_code == 200, response.text[:500]
    assert viewer.wait_for(topic="board", board=board, patient=patient), \
        f"no board poke on the other process; heard {viewer.pokes}"
    assert viewer.wait_for(topic="sheet", patient=patient), \
        f"no sheet poke on the other process; heard {viewer.pokes}"
    assert first.query("SELECT status FROM tasks WHERE uid = ?", task) == [("done",)]


def test_without_redis_a_process_still_pokes_its_own_clients(kiosk_servers, redis_channel,
                                                             poke_listener):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    server = kiosk_servers("alone", env={"KIOSK_REDIS_URL": dead,
                                         "KIOSK_REDIS_CHANNEL": redis_channel})
    patient, board, task = open_task(server)
    tech = server.signed_in("tech", "tech-demo-1")
    viewer = poke_listener(server.base_url, cookie=session_cookie(tech))
    assert viewer.join(f"board:{board}", f"sheet:{patient}")["refused"] == []

    response = complete_task(tech, server.base_url, task)

    assert response.status_code == 200, response.text[:500]
    assert viewer.wait_for(topic="board", board=board, patient=patient), \
        f"no board poke without Redis; heard {viewer.pokes}\n{server.log_text()[-3000:]}"
    assert viewer.wait_for(topic="sheet", patient=patient)
    assert tech.get(f"{server.base_url}/patients/{patient}/sheet", timeout=10).status_code == 200
    deadline = time.monotonic() + 5
    while not any(error in server.log_text() for error in REDIS_ERRORS) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(error in server.log_text() for error in REDIS_ERRORS), server.log_text()[-3000:]
