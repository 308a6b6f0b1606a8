"""`kiosk run` as a clinic runs it: a production server, pages, live updates and sync,
and a crowd of tablets back from an outage while someone signs in."""

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from kiosk.core.clock import format_iso_z, utcnow

from ..support.server import KioskServer, serving
from .helpers import PokeListener, complete_task, open_task, session_cookie

pytestmark = pytest.mark.servers

CROWD = 24  # more tablets than the old pool had connections (5 + 10)
BATCHES = 3
OPS_PER_BATCH = 20
LIMIT_S = 5.0


def now_iso() -> str:
    """The current time as SYNC.md writes it (the server under test runs on the real clock)."""
    return format_iso_z(utcnow())


def provision(server: KioskServer, count: int) -> list[tuple[str, str]]:
    """`count` tablets on the server's database in one go: [(public id, token)]."""
    from kiosk import create_app
    from kiosk.devices.services import device_provision
    from kiosk.extensions import db

    app = create_app("default", {"SQLALCHEMY_DATABASE_URI": server.env["KIOSK_DATABASE_URL"],
                                 "SECRET_KEY": server.env["KIOSK_SECRET_KEY"]})
    with app.app_context():
        made = [device_provision(name=f"Tablet {n}", colour="blue", number=n)
                for n in range(1, count + 1)]
        db.session.commit()
        out = [(device.public_id, token) for device, token in made]
        db.session.remove()
        db.engine.dispose()
    return out


def note_ops(patients: list[str], user: str, first_seq: int, count: int) -> list[dict]:
    """`count` notes on the demo patients, numbered from `first_seq`."""
    ops = []
    for seq in range(first_seq, first_seq + count):
        op_id = str(uuid.uuid4())
        ops.append({"id": op_id, "seq": seq, "name": "note.add", "at": now_iso(), "user": user,
                    "args": {"note": op_id, "patient": patients[seq % len(patients)],
                             "text": "Settled overnight."}})
    return ops


def queue_document(server: KioskServer) -> str:
    """Queue a PDF for the first demo patient from outside the server: its uid."""
    from sqlalchemy import select

    from kiosk import create_app
    from kiosk.documents.services import document_queue
    from kiosk.extensions import db
    from kiosk.patients.models import Patient

    app = create_app("default", {"SQLALCHEMY_DATABASE_URI": server.env["KIOSK_DATABASE_URL"],
                                 "SECRET_KEY": server.env["KIOSK_SECRET_KEY"]})
    with app.app_context():
        patient = db.session.scalars(select(Patient).order_by(Patient.id)).first()
        document = document_queue(patient=patient, kind="form", source_uid=None,
                                  title="Worker check", html="<p>Worker check</p>")
        db.session.commit()
        uid = document.uid
        db.session.remove()
        db.engine.dispose()
    return uid


@pytest.fixture
def clinic_server(tmp_path):
    """`kiosk run --demo` on a fresh SQLite file, as the README starts it."""
    yield from serving(KioskServer(Path(tmp_path), run_demo=True, name="run"))


def test_kiosk_run_serves_pages_live_updates_and_sync_on_a_production_server(clinic_server):
    server = clinic_server
    assert server.query("SELECT count(*) FROM patients")[0][0] > 0  # --demo made the clinic
    tech = server.signed_in("tech", "tech-demo-1")
    assert tech.get(f"{server.base_url}/boards/", timeout=10).status_code in (200, 302)
    patient, board, task = open_task(server)
    viewer = PokeListener(server.base_url, cookie=session_cookie(tech))
    try:
        assert viewer.sio.transport() == "websocket"
        assert viewer.join(f"board:{board}")["refused"] == []
        assert complete_task(tech, server.base_url, task).status_code == 200
        assert viewer.wait_for(topic="board", board=board, patient=patient), viewer.pokes
    finally:
        viewer.close()
    device = json.loads(server.kiosk("devices", "add", "--name", "Bay", "--colour", "blue")
                        .strip().splitlines()[-1])
    user = f"u_{server.query('SELECT id FROM users WHERE username = ?', 'tech')[0][0]}"
    answer = requests.post(f"{server.base_url}/api/sync", timeout=10,
                           headers={"Authorization": f"Bearer {device['token']}"},
                           json={"device": device["id"], "sent_at": now_iso(),
                                 "ops": note_ops([patient], user, 1, 1)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["status"] == "applied"
    # The documents worker runs inside the server: it takes up a queued PDF by itself.
    document = queue_document(server)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.query(
            "SELECT attempts FROM documents WHERE uid = ?", document)[0][0] == 0:
        time.sleep(0.5)
    assert server.query("SELECT attempts FROM documents WHERE uid = ?", document)[0][0] >= 1
    log = server.log_text()
    assert "development server" not in log.lower(), log[-2000:]
    assert "gunicorn" in log.lower(), log[-2000:]


def test_a_crowd_of_tablets_syncing_leaves_sign_in_and_pages_prompt(clinic_server):
    server = clinic_server
    tablets = provision(server, CROWD)
    patients = [row[0] for row in server.query(
        "SELECT uid FROM patients WHERE status = 'admitted' ORDER BY id")]
    user = f"u_{server.query('SELECT id FROM users WHERE username = ?', 'tech')[0][0]}"
    notes_before = server.query("SELECT count(*) FROM notes")[0][0]
    answers: list[tuple[str, int, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(CROWD + 1)

    def tablet(device: str, token: str) -> None:
        session = requests.Session()
        start.wait()
        for batch in range(BATCHES):
            ops = note_ops(patients, user, batch * OPS_PER_BATCH + 1, OPS_PER_BATCH)
            began = time.perf_counter()
            try:
                status = session.post(
                    f"{server.base_url}/api/sync", timeout=60,
                    headers={"Authorization": f"Bearer {token}"},
                    json={"device": device, "sent_at": now_iso(), "ops": ops}).status_code
            except requests.RequestException:
                status = 0
            with lock:
                answers.append(("sync", status, time.perf_counter() - began))

    threads = [threading.Thread(target=tablet, args=item) for item in tablets]
    for thread in threads:
        thread.start()
    start.wait()
    time.sleep(0.3)  # the crowd is in full flow
    began = time.perf_counter()
    vet = server.signed_in("vet", "vet-demo-1")
    page = vet.get(f"{server.base_url}/boards/", timeout=60)
    answers.append(("sign-in and a page", page.status_code, time.perf_counter() - began))
    for thread in threads:
        thread.join(timeout=120)

    statuses = sorted({status for kind, status, _ in answers if kind == "sync"})
    assert statuses == [200], answers
    slow = [answer for answer in answers if answer[2] > LIMIT_S]
    assert not slow, f"over {LIMIT_S} s: {slow}"
    assert [status for kind, status, _ in answers if kind != "sync"] == [200]
    assert server.query("SELECT count(*) FROM notes")[0][0] == \
        notes_before + CROWD * BATCHES * OPS_PER_BATCH
