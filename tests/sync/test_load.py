"""Many tablets syncing at once: no request waits on a connection it cannot get.

A hospital back from an outage has every tablet flushing its outbox at the same moment.
The connection pool is smaller than the crowd here on purpose (two connections, eight
tablets, a three-second pool timeout): a request that held a connection while queuing for
its turn to write, or that needed a second one after its commit (to work out whom to
poke), would starve the others until the pool timed out.
"""

import threading
import time
import uuid

import pytest
from sqlalchemy import event, func, select

from kiosk import create_app
from kiosk.core.clock import format_iso_z, utcnow
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.live import pokes
from kiosk.sync.turns import TURNS_EXTENSION
from kiosk.treatments.models import Note
from tests import factories
from tests.support.database import app_on_fresh_database

TABLETS = 8
POOL = {"pool_size": 2, "max_overflow": 0, "pool_timeout": 3}
# Under the pool timeout: nobody waited out the pool for a connection held by a queued
# request (that wait would end in the pool's TimeoutError, after these 3 s).
LIMIT_S = POOL["pool_timeout"]


@pytest.fixture
def small_pool_app(server_database, tmp_path):
    """The application on a fresh database with a pool of two connections."""
    with app_on_fresh_database(server_database, tmp_path / "load.db",
                               {"SQLALCHEMY_ENGINE_OPTIONS": dict(POOL)}) as application:
        yield application


def _note_body(device, user, patient) -> dict:
    """One note, as a tablet back online sends it: the note pokes the patient's boards."""
    op_id = str(uuid.uuid4())
    return {"device": device.public_id, "sent_at": format_iso_z(utcnow()),
            "outbox": {"pending": 1, "oldest_at": None},
            "ops": [{"id": op_id, "seq": 1, "name": "note.add", "at": format_iso_z(utcnow()),
                     "user": user.public_id,
                     "args": {"note": op_id, "patient": patient.uid, "text": "Settled."}}]}


def test_a_crowd_of_tablets_larger_than_the_pool_all_sync_promptly(small_pool_app,
                                                                   monkeypatch):
    clinic = factories.clinic_make()
    patient = factories.patient_make(clinic)
    user = clinic.user(3)
    tablets = [device_provision(name=f"Tablet {n}", colour="blue") for n in range(TABLETS)]
    db.session.commit()
    bodies = [(token, _note_body(device, user, patient)) for device, token in tablets]
    notes_before = db.session.scalar(select(func.count()).select_from(Note))
    db.session.remove()
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(pokes.socketio, "emit",
                        lambda name, poke, to=None: sent.append((to, poke)))
    held: dict[int, int] = {}
    most_held = [0]

    def counted(delta):
        def listener(*_args):
            ident = threading.get_ident()
            held[ident] = held.get(ident, 0) + delta
            most_held[0] = max(most_held[0], held[ident])
        return listener

    event.listen(db.engine, "checkout", counted(1))
    event.listen(db.engine, "checkin", counted(-1))
    client = small_pool_app.test_client()
    answers: list[tuple[int, float, str]] = []
    start = threading.Barrier(TABLETS)

    def tablet(token, body):
        start.wait()
        began = time.perf_counter()
        try:
            response = client.post("/api/sync", json=body,
                                   headers={"Authorization": f"Bearer {token}"})
            status, text_ = response.status_code, response.get_data(as_text=True)[:200]
        except Exception as exc:  # noqa: BLE001 - the testing config raises what would be a 500
            status, text_ = 500, f"{type(exc).__name__}: {exc}"[:200]
        answers.append((status, time.perf_counter() - began, text_))

    threads = [threading.Thread(target=tablet, args=item) for item in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(status for status, _, _ in answers) == [200] * TABLETS, answers
    slowest = max(took for _, took, _ in answers)
    assert slowest < LIMIT_S, f"a sync took {slowest:.1f} s: {answers}"
    assert most_held[0] == 1, "a request held two connections at once"
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Note)) == notes_before + TABLETS
    # Every commit poked the patient's sheet: no poke was lost to a pool timeout.
    sheet = [to for to, _ in sent if to == pokes.room_sheet(patient.uid)]
    assert len(sheet) == TABLETS, sent


def test_a_queued_sync_holds_no_connection(small_pool_app):
    """While one request writes, the next waits for its turn without a connection."""
    from kiosk.sync.turns import write_turn

    clinic = factories.clinic_make()
    patient = factories.patient_make(clinic)
    device, token = device_provision(name="Tablet", colour="blue")
    db.session.commit()
    body = _note_body(device, clinic.user(3), patient)
    db.session.remove()
    pool = db.engine.pool
    client = small_pool_app.test_client()
    answers = []
    turns = small_pool_app.extensions[TURNS_EXTENSION]
    with small_pool_app.app_context(), write_turn():  # another sync is writing
        waiting = threading.Thread(target=lambda: answers.append(client.post(
            "/api/sync", json=body, headers={"Authorization": f"Bearer {token}"})))
        waiting.start()
        in_line_by = time.monotonic() + 10
        while not turns.waiting() and time.monotonic() < in_line_by:
            time.sleep(0.01)  # until the request has authenticated and waits for its turn
        in_line = turns.waiting()
        checked_out = pool.checkedout()
        still_waiting = waiting.is_alive()
    waiting.join(timeout=30)
    assert in_line == 1 and still_waiting, "the request did not wait for its turn"
    assert checked_out == 0, "a queued sync request kept a pooled connection"
    assert answers and answers[0].status_code == 200, answers and answers[0].get_data()


def test_a_sync_that_cannot_get_its_turn_soon_is_told_to_come_back(small_pool_app,
                                                                     monkeypatch):
    """Past the wait cap, a busy answer (503 with Retry-After), not a minute in line;
    nothing of the batch applied."""
    from kiosk.devices.models import Device
    from kiosk.sync import turns

    monkeypatch.setattr(turns, "TURN_WAIT_S", 0.5, raising=False)
    clinic = factories.clinic_make()
    patient = factories.patient_make(clinic)
    device, token = device_provision(name="Tablet", colour="blue")
    db.session.commit()
    device_id = device.id
    body = _note_body(device, clinic.user(3), patient)
    notes_before = db.session.scalar(select(func.count()).select_from(Note))
    db.session.remove()
    client = small_pool_app.test_client()
    answers = []
    with small_pool_app.app_context(), turns.write_turn():  # a long batch is writing
        waiting = threading.Thread(target=lambda: answers.append(client.post(
            "/api/sync", json=body, headers={"Authorization": f"Bearer {token}"})))
        waiting.start()
        waiting.join(timeout=3)
        answered_while_busy = bool(answers)
    waiting.join(timeout=30)

    assert answered_while_busy, "the request waited past the cap"
    response = answers[0]
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Note)) == notes_before
    assert db.session.get(Device, device_id).last_seq == 0


def test_a_device_revoked_while_its_sync_waits_in_line_is_refused(small_pool_app):
    """The token was good when the request queued; the device is read again, locked,
    when its turn comes: revoked meanwhile, nothing of the batch is applied."""
    from kiosk.devices.models import Device
    from kiosk.devices.services import device_revoke
    from kiosk.sync.turns import write_turn

    clinic = factories.clinic_make()
    patient = factories.patient_make(clinic)
    device, token = device_provision(name="Tablet", colour="blue")
    db.session.commit()
    device_id = device.id
    body = _note_body(device, clinic.user(3), patient)
    notes_before = db.session.scalar(select(func.count()).select_from(Note))
    db.session.remove()
    client = small_pool_app.test_client()
    answers = []
    with small_pool_app.app_context(), write_turn():  # another sync is writing
        waiting = threading.Thread(target=lambda: answers.append(client.post(
            "/api/sync", json=body, headers={"Authorization": f"Bearer {token}"})))
        waiting.start()
        time.sleep(0.8)  # authenticated, now in line
        device_revoke(actor=None, device=db.session.get(Device, device_id), operator=True)
        db.session.commit()
        db.session.remove()
    waiting.join(timeout=30)

    assert answers and answers[0].status_code == 401, answers and answers[0].get_data()
    assert answers[0].get_json()["error"] == "unauthorized"
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Note)) == notes_before
    assert db.session.get(Device, device_id).last_seq == 0


def test_write_turns_are_served_in_arrival_order_and_a_wait_can_run_out():
    from kiosk.sync.turns import WriteTurns

    turns = WriteTurns(1)
    assert turns.acquire(0)
    order: list[int] = []

    def wait(n: int) -> None:
        if turns.acquire(10):
            order.append(n)
            turns.release(0.01)

    waiters = []
    for n in range(5):
        waiters.append(threading.Thread(target=wait, args=(n,)))
        waiters[-1].start()
        time.sleep(0.05)  # each arrives after the one before
    assert not turns.acquire(0.1)  # the line is long: this wait runs out
    assert 1 <= turns.retry_after() <= 60
    turns.release(0.01)
    for thread in waiters:
        thread.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]
    assert turns.acquire(0)  # every turn was given back, the timed-out one included


def test_the_pool_and_the_server_follow_the_thread_count(tmp_path):
    """KIOSK_THREADS sizes both what `kiosk run` serves with and the database pool: a
    connection per thread on SQLite, PostgreSQL's capped per process."""
    from kiosk.cli import gunicorn_options

    lite = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
                                  "KIOSK_THREADS": 7})
    with lite.app_context():
        assert db.engine.pool.size() == 7 + 4  # and the background threads
        assert gunicorn_options(lite, "127.0.0.1", 8000)["threads"] == 7
        db.engine.dispose()
    pg_url = "postgresql+psycopg://kiosk@db.invalid/kiosk"  # never connected to here
    big = create_app("testing", {"SQLALCHEMY_DATABASE_URI": pg_url, "KIOSK_THREADS": 300})
    with big.app_context():
        assert db.engine.pool.size() == 20
        assert gunicorn_options(big, "127.0.0.1", 8000)["threads"] == 300
    capped = create_app("testing", {"SQLALCHEMY_DATABASE_URI": pg_url, "KIOSK_THREADS": 300,
                                    "KIOSK_DB_POOL_MAX": 8})
    with capped.app_context():
        assert db.engine.pool.size() == 8
        assert capped.extensions[TURNS_EXTENSION].slots == 2
