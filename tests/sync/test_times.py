"""A sync request's clocks are read by the one timestamp parser (core.validate.timestamp),
unbounded: any time with its zone is taken (the skew corrects a device's clock however far
off it is), anything else refused as before."""

import json

import pytest
from sqlalchemy import func, select

from kiosk.devices.models import Device, SyncOp
from kiosk.extensions import db
from kiosk.treatments.models import Note
from tests import factories


def post(tablet, body: dict):
    db.session.remove()
    response = tablet.client.post("/api/sync", data=json.dumps(body),
                                  content_type="application/json",
                                  headers={"Authorization": f"Bearer {tablet.token}"})
    db.session.remove()
    return response.status_code, response.get_json()


def note_op(patient, user, *, at: str, seq: int = 1) -> dict:
    return {"id": f"op-{seq}", "seq": seq, "name": "note.add", "at": at,
            "args": {"note": f"00000000-0000-4000-8000-00000000000{seq}",
                     "patient": patient.uid, "text": "ate well"}, "user": user.public_id}


@pytest.mark.parametrize("sent_at", [
    "2026-11-22T10:20:00Z", "2026-11-22T11:20:00+01:00", "2026-11-22T10:20:00.412Z",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",  # a dead clock is corrected, not refused
])
def test_a_sent_at_with_its_zone_is_taken_however_far_off(clinic, tablet, sent_at):
    patient = factories.patient_make(clinic)
    status, answer = post(tablet, {"device": tablet.id, "sent_at": sent_at,
                                   "ops": [note_op(patient, clinic.user(2), at=sent_at)]})
    assert status == 200, answer
    assert answer["results"][0]["status"] == "applied"
    assert db.session.scalar(select(func.count()).select_from(Note)) == 1


@pytest.mark.parametrize("sent_at", [
    None, "", "2026-11-22T10:20:00", "yesterday", 1732270800, "2026-11-22", "x" * 41,
    "9999-12-31T23:00:00-05:00",  # a zone UTC cannot hold it in
])
def test_a_sent_at_that_is_not_a_zoned_timestamp_refuses_the_request(clinic, tablet, sent_at):
    patient = factories.patient_make(clinic)
    status, answer = post(tablet, {"device": tablet.id, "sent_at": sent_at,
                                   "ops": [note_op(patient, clinic.user(2),
                                                   at="2026-11-22T10:20:00Z")]})
    assert status == 400 and answer["error"] == "bad_request"
    assert "“sent_at” must be a timestamp" in answer["message"]
    assert db.session.scalar(select(func.count()).select_from(SyncOp)) == 0
    assert db.session.scalar(select(func.count()).select_from(Note)) == 0


@pytest.mark.parametrize("at", [None, "2026-11-22T10:20:00", "soon", 12])
def test_an_op_whose_at_is_not_a_zoned_timestamp_is_rejected_naming_it(clinic, tablet, at):
    patient = factories.patient_make(clinic)
    status, answer = post(tablet, {"device": tablet.id, "sent_at": "2026-11-22T10:20:00Z",
                                   "ops": [note_op(patient, clinic.user(2), at=at)]})
    assert status == 200
    (result,) = answer["results"]
    assert result["status"] == "rejected"
    assert (result["error"]["code"], result["error"]["field"]) == ("bad_time", "at")
    assert db.session.scalar(select(func.count()).select_from(Note)) == 0


def test_an_outbox_report_with_a_bad_oldest_at_never_refuses_a_heartbeat(clinic, tablet):
    status, answer = post(tablet, {"device": tablet.id, "sent_at": "2026-11-22T10:20:00Z",
                                   "outbox": {"pending": 3, "oldest_at": "last week"},
                                   "ops": []})
    assert status == 200 and answer["results"] == []
    device = db.session.get(Device, tablet.device.id)
    assert (device.outbox_pending, device.outbox_oldest_at) == (3, None)
