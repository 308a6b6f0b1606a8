"""A wall display's token is not a tablet's: it may not sync, read the API, claim a tablet
session or fetch the lock screen's staff list. The kind of device is checked in one place
(`kiosk.devices.auth.device_from_request`)."""

import json
import uuid

import pytest
from sqlalchemy import func, select

from kiosk.core.clock import format_iso_z, utcnow
from kiosk.devices.models import SyncOp
from kiosk.devices.services import device_provision, display_create
from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.treatments.models import Note, Order
from tests import factories


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def display(clinic):
    """A wall display of the clinic's board: (device, token)."""
    device, token = display_create(actor=clinic.user(6), name="Corridor",
                                   board_id=clinic.board.id)
    db.session.commit()
    return device, token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _sync(client, device, token, ops):
    body = json.dumps({"device": device.public_id, "sent_at": format_iso_z(utcnow()),
                       "outbox": {"pending": len(ops), "oldest_at": None}, "ops": ops})
    return client.post("/api/sync", data=body, content_type="application/json",
                       headers=bearer(token))


def test_a_display_token_cannot_sync_and_nothing_is_applied(clinic, client, display):
    device, token = display
    patient = factories.patient_make(clinic)
    factories.order_make(clinic, patient)
    before = (count(Note), count(Order), count(SyncOp))
    at = format_iso_z(utcnow())
    ops = [{"id": str(uuid.uuid4()), "seq": 1, "name": "note.add", "at": at,
            "user": clinic.user(6).public_id,
            "args": {"note": str(uuid.uuid4()), "patient": patient.uid, "text": "x"}},
           {"id": str(uuid.uuid4()), "seq": 2, "name": "patient.discharge", "at": at,
            "user": clinic.user(6).public_id, "args": {"patient": patient.uid}}]
    response = _sync(client, device, token, ops)
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"] == "unauthorized" and "tablet" in body["message"]
    assert (count(Note), count(Order), count(SyncOp)) == before
    assert db.session.get(Patient, patient.id).status == "admitted"
    db.session.refresh(device)
    assert device.last_seq == 0 and device.last_seen_at is None


def test_a_display_token_reads_nothing_on_the_api(clinic, client, display):
    device, token = display
    patient = factories.patient_make(clinic)
    for url in ("/api/patients?status=all", "/api/patients",
                f"/api/patients/{patient.uid}/tasks", f"/api/devices/{device.public_id}"):
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 401, url
        assert response.get_json()["error"] == "unauthorized"
        assert patient.name not in response.get_data(as_text=True)


def test_a_display_token_claims_no_tablet_session_and_no_staff_list(clinic, client, display):
    device, token = display
    claimed = client.post("/tablet/claim", headers=bearer(token))
    assert claimed.status_code == 401
    with client.session_transaction() as session:
        assert "tablet_id" not in session and "display_id" not in session
    staff = client.get(f"/api/devices/{device.public_id}/staff", headers=bearer(token))
    assert staff.status_code == 401 and "verifier" not in staff.get_data(as_text=True)
    pages = client.get("/tablet/offline-pages", headers=bearer(token))
    assert pages.status_code == 401


def test_a_tablet_token_cannot_claim_a_display_session(clinic, client):
    _device, token = device_provision(name="Ward", colour="blue")
    db.session.commit()
    answer = client.post("/display/claim", json={"token": token})
    assert answer.status_code == 401 and answer.get_json()["error"] == "bad_display_token"
    with client.session_transaction() as session:
        assert "display_id" not in session and "tablet_id" not in session


def test_a_tablet_token_still_syncs_and_reads(clinic, client):
    device, token = device_provision(name="Ward", colour="blue")
    db.session.commit()
    patient = factories.patient_make(clinic)
    listed = client.get("/api/patients", headers=bearer(token))
    assert listed.status_code == 200 and listed.get_json()[0]["uid"] == patient.uid
    at = format_iso_z(utcnow())
    op = {"id": str(uuid.uuid4()), "seq": 1, "name": "note.add", "at": at,
          "user": clinic.user(1).public_id,
          "args": {"note": str(uuid.uuid4()), "patient": patient.uid, "text": "x"}}
    answer = _sync(client, device, token, [op])
    assert answer.status_code == 200 and answer.get_json()["results"][0]["status"] == "applied"


def test_a_display_token_on_a_socket_hears_only_its_board(clinic, client, display,
                                                          socketio_client):
    _device, token = display
    sio = socketio_client(auth={"token": token})
    assert sio.is_connected()
    patient = factories.patient_make(clinic)
    ack = sio.emit("join", {"rooms": [f"sheet:{patient.uid}", "devices"]}, callback=True)
    assert ack["joined"] == []
