"""Discharge checks first and says what blocks it; a manager may override with a reason;
offline, a blocked discharge lands as a conflict; the discharged patient's summary and
(when the clinic asks) one merged PDF are archived. Pending boards fill themselves."""

import io
import uuid

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from kiosk.anaesthesia.services import anaesthesia_start
from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.discharge.selectors import discharge_blockers, pending_by_patient
from kiosk.discharge.services import patient_discharge
from kiosk.documents.models import DOC_READY, Document
from kiosk.documents.worker import documents_work
from kiosk.extensions import db
from kiosk.whiteboards.models import Board
from kiosk.whiteboards.selectors import board_grid, board_patients
from tests import factories
from tests.support.anaesthesia import long_sheet
from tests.support.tablet import Tablet, now_z


def _open_sheet(clinic, patient):
    sheet = anaesthesia_start(patient=patient, user=clinic.user(3), header={"procedure": "Spay"})
    db.session.commit()
    return sheet


def test_an_open_sheet_blocks_discharge_and_nothing_changes(app, clinic):
    patient = factories.patient_make(clinic, "Biscuit")
    _open_sheet(clinic, patient)
    with pytest.raises(DomainError) as refused:
        patient_discharge(patient=patient, user=clinic.user(4))
    assert refused.value.code == "discharge_blocked"
    assert "anaesthesia sheet" in refused.value.message and "not finalised" in refused.value.message
    db.session.rollback()
    assert patient.status == "admitted" and patient.discharged_at is None
    assert db.session.scalar(select(func.count(Document.id))) == 0


def test_only_a_manager_may_override_and_the_reason_is_recorded(app, clinic):
    patient = factories.patient_make(clinic, "Biscuit")
    _open_sheet(clinic, patient)
    with pytest.raises(DomainError) as refused:
        patient_discharge(patient=patient, user=clinic.user(5), override_reason="Owner here")
    assert refused.value.code == "forbidden"
    db.session.rollback()
    assert patient.status == "admitted"
    patient_discharge(patient=patient, user=clinic.user(6),
                      override_reason="Owner collecting; sheet finished on paper")
    db.session.commit()
    assert patient.status == "discharged"
    assert patient.discharge_override == "Owner collecting; sheet finished on paper"
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "patient.discharge"))
    assert audit.detail["overridden"] == ["sheet_open"] and audit.user_id == clinic.user(6).id
    documents_work()
    summary = db.session.scalar(select(Document).where(Document.kind == "discharge"))
    text = PdfReader(io.BytesIO(summary.pdf)).pages[0].extract_text()
    assert "Discharged although checks found" in text and "sheet finished on paper" in text


def test_pdfs_still_queued_do_not_hold_the_discharge_and_the_worker_merges_them(app, clinic):
    clinic.settings.documents_merge_at_discharge = True
    db.session.commit()
    patient = factories.patient_make(clinic, "Biscuit")
    long_sheet(patient, clinic.user(3), hours=1, drugs=2)
    assert discharge_blockers(patient) == []  # its PDF is queued: the worker makes it
    patient_discharge(patient=patient, user=clinic.user(4))
    db.session.commit()
    kinds = dict(db.session.execute(select(Document.kind, Document.status)).all())
    assert kinds == {"anaesthesia": "queued", "discharge": "queued", "merged": "queued"}
    while any(documents_work().values()):
        pass
    kinds = dict(db.session.execute(select(Document.kind, Document.status)).all())
    assert kinds == {"anaesthesia": "ready", "discharge": "ready", "merged": "ready"}
    merged = db.session.scalar(select(Document).where(Document.kind == "merged"))
    parts = db.session.scalars(select(Document.pages).where(Document.kind != "merged")).all()
    assert merged.pages == sum(parts) == len(PdfReader(io.BytesIO(merged.pdf)).pages)


def test_a_discharge_through_sync_renders_nothing_and_the_worker_then_makes_its_pdfs(
        app, clinic, client, monkeypatch):
    from kiosk.documents import worker

    patient = factories.patient_make(clinic, "Biscuit")
    long_sheet(patient, clinic.user(3), hours=1, drugs=1)
    rendered = []
    real_render = worker.pdf_render

    def counting_render(document):
        rendered.append(document.kind)
        return real_render(document)

    monkeypatch.setattr(worker, "pdf_render", counting_render)
    tablet = Tablet(client, "Blue")
    answer = tablet.post([tablet.op("patient.discharge", {"patient": patient.uid},
                                    clinic.user(4))]).get_json()
    assert [r["status"] for r in answer["results"]] == ["applied"]
    assert rendered == []  # nothing rendered while the batch held the write lock
    db.session.expire_all()
    assert patient.status == "discharged"
    # What to render was committed with the discharge, as rows the worker reads.
    statuses = dict(db.session.execute(select(Document.kind, Document.status)).all())
    assert statuses == {"anaesthesia": "queued", "discharge": "queued"}
    assert documents_work()["rendered"] == 2
    assert sorted(rendered) == ["anaesthesia", "discharge"]
    summary = db.session.scalar(select(Document).where(Document.kind == "discharge"))
    assert summary.status == DOC_READY
    assert "Biscuit" in PdfReader(io.BytesIO(summary.pdf)).pages[0].extract_text()


def test_another_tablets_unsent_changes_block_discharge(app, clinic, client):
    patient = factories.patient_make(clinic, "Biscuit")
    tablet = Tablet(client, "Green")
    answer = tablet.post([], outbox={"pending": 3, "oldest_at": now_z(),
                                     "patients": [patient.uid], "discharges": []})
    assert answer.status_code == 200
    [blocker] = discharge_blockers(patient)
    assert blocker.code == "device_waiting" and "3 unsent change(s)" in blocker.message
    assert discharge_blockers(patient, device=tablet.device) == []  # its own ops came first
    tablet.post([], outbox={"pending": 0, "oldest_at": None})
    db.session.expire_all()
    assert discharge_blockers(patient) == []


def test_a_heartbeat_with_odd_patients_is_not_refused(app, clinic, client):
    tablet = Tablet(client, "Green")
    answer = tablet.post([], outbox={"pending": 1, "patients": ["not-a-uid", 5]})
    assert answer.status_code == 200
    db.session.expire_all()
    assert tablet.device.outbox_patients == []


def test_a_blocked_discharge_sent_offline_is_a_conflict_and_discharges_nothing(app, clinic,
                                                                              client):
    patient = factories.patient_make(clinic, "Biscuit")
    _open_sheet(clinic, patient)
    tablet = Tablet(client, "Blue")
    answer = tablet.post([tablet.op("patient.discharge", {"patient": patient.uid},
                                    clinic.user(4))]).get_json()
    [result] = answer["results"]
    assert result["status"] == "conflict" and answer["last_seq"] == 1
    assert result["result"]["conflict"] == "discharge_blocked"
    assert "not finalised" in result["result"]["message"]
    db.session.expire_all()
    assert patient.status == "admitted"


def test_a_blocked_discharge_stays_on_the_pending_board_until_reviewed(app, clinic, client,
                                                                       login, socketio_client):
    from kiosk.anaesthesia.services import anaesthesia_finalise, anaesthesia_record
    from kiosk.devices.models import Device, SyncOp
    from kiosk.devices.services import sync_op_dismiss

    patient = factories.patient_make(clinic, "Biscuit")
    sheet = _open_sheet(clinic, patient)
    login(clinic.user(2))
    sio = socketio_client()
    sio.emit("join", {"rooms": [f"sheet:{patient.uid}"]}, callback=True)
    sio.get_received()
    tablet = Tablet(client, "Blue")
    tablet.post([tablet.op("patient.discharge", {"patient": patient.uid}, clinic.user(4))])
    # Told (the pending boards are poked the same way), and it shows why.
    assert [evt["args"][0]["patient"] for evt in sio.get_received()
            if evt["name"] == "poke"] == [patient.uid]
    db.session.expire_all()
    labels = pending_by_patient([patient])[patient.id]
    assert labels == ["anaesthesia open", "discharge blocked, not reviewed"]
    # Once the sheet is finalised it is still there: the refused discharge was not redone.
    anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="header", data={"asa": "I"})
    anaesthesia_finalise(sheet=sheet, user=clinic.user(3))
    db.session.commit()
    documents_work()
    assert pending_by_patient([patient])[patient.id] == ["discharge blocked, not reviewed"]
    record = db.session.scalars(select(SyncOp).where(SyncOp.status == "conflict")).one()
    device = db.session.get(Device, record.device_id)
    sync_op_dismiss(actor=clinic.user(4), device=device, op_id=record.id)
    db.session.commit()
    assert pending_by_patient([patient]) == {}


def test_finalise_then_discharge_in_one_batch_discharges_once(app, clinic, client):
    patient = factories.patient_make(clinic, "Biscuit")
    tablet = Tablet(client, "Blue")
    nurse, vet = clinic.user(3), clinic.user(4)
    sheet = str(uuid.uuid4())
    ops = [tablet.op("anaesthesia.start", {"sheet": sheet, "patient": patient.uid,
                                           "procedure": "Dental", "asa": "I"}, nurse),
           tablet.op("anaesthesia.record", {"entry": str(uuid.uuid4()), "sheet": sheet,
                                            "kind": "vitals", "data": {"hr": 80}}, nurse),
           tablet.op("anaesthesia.finalise", {"sheet": sheet}, nurse),
           tablet.op("patient.discharge", {"patient": patient.uid}, vet)]
    answer = tablet.post(ops).get_json()
    assert [r["status"] for r in answer["results"]] == ["applied"] * 4
    again = tablet.post(ops).get_json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 4
    db.session.expire_all()
    assert patient.status == "discharged"
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "patient.discharge")) == 1
    statuses = dict(db.session.execute(select(Document.kind, Document.status)).all())
    assert statuses == {"anaesthesia": "queued", "discharge": "queued"}


def test_the_pending_board_fills_itself(app, clinic, client, login):
    waiting = factories.patient_make(clinic, "Biscuit", cage="1")
    factories.patient_make(clinic, "Rex", cage="2")
    board = Board(name="Pending", kind="pending")
    db.session.add(board)
    db.session.commit()
    assert board_patients(board) == []
    _open_sheet(clinic, waiting)
    assert [p.name for p in board_patients(board)] == ["Biscuit"]
    assert pending_by_patient([waiting]) == {waiting.id: ["anaesthesia open"]}
    grid = board_grid(board)
    assert grid.rows[0].pending == ["anaesthesia open"]
    login(clinic.user(1))
    page = client.get(f"/boards/{board.id}")
    assert page.status_code == 200 and b"anaesthesia open" in page.data
    assert b"Rex" not in page.data


def test_a_discharge_waiting_on_a_tablet_shows_on_the_pending_board(app, clinic, client):
    patient = factories.patient_make(clinic, "Biscuit")
    tablet = Tablet(client, "Green")
    tablet.post([], outbox={"pending": 1, "patients": [patient.uid],
                            "discharges": [patient.uid]})
    db.session.expire_all()
    [label] = pending_by_patient([patient])[patient.id]
    assert label.startswith("discharge waiting on")


def test_the_discharge_page_shows_what_blocks_it_and_the_override(app, clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    _open_sheet(clinic, patient)
    login(clinic.user(4))
    page = client.get(f"/patients/{patient.uid}/discharge")
    assert page.status_code == 200 and b"blocker-sheet_open" in page.data
    refused = client.post(f"/patients/{patient.uid}/discharge")
    assert refused.status_code == 409 and b"cannot be discharged yet" in refused.data
    db.session.expire_all()
    assert patient.status == "admitted"
    login(clinic.user(6))
    done = client.post(f"/patients/{patient.uid}/discharge",
                       data={"override_reason": "Finished on paper"})
    assert done.status_code == 302
    db.session.expire_all()
    assert patient.status == "discharged" and patient.discharge_override == "Finished on paper"


def test_a_sheet_started_before_the_discharge_but_synced_after_still_lands(app, clinic, client):
    from datetime import timedelta

    from kiosk.anaesthesia.models import AnaesthesiaEntry

    patient = factories.patient_make(clinic, "Biscuit")
    a, b = Tablet(client, "Blue"), Tablet(client, "Green")
    nurse, vet = clinic.user(3), clinic.user(4)
    sheet_a, sheet_b = str(uuid.uuid4()), str(uuid.uuid4())
    earlier = now_z(-timedelta(minutes=30))
    a.post([a.op("anaesthesia.start", {"sheet": sheet_a, "patient": patient.uid,
                                       "procedure": "Dental", "asa": "I"}, nurse, at=earlier),
            a.op("anaesthesia.finalise", {"sheet": sheet_a}, nurse),
            a.op("patient.discharge", {"patient": patient.uid}, vet,
                 at=now_z(-timedelta(minutes=10)))])
    db.session.expire_all()
    assert patient.status == "discharged"
    entry = str(uuid.uuid4())
    late = b.post([b.op("anaesthesia.start", {"sheet": sheet_b, "patient": patient.uid},
                        nurse, at=now_z(-timedelta(minutes=29))),
                   b.op("anaesthesia.record", {"entry": entry, "sheet": sheet_b,
                                               "kind": "vitals", "data": {"hr": 88}},
                        nurse, at=now_z(-timedelta(minutes=20)))]).get_json()
    assert [r["status"] for r in late["results"]] == ["applied", "applied"]
    assert late["results"][0]["result"]["joined"] == sheet_a
    stored = db.session.scalar(select(AnaesthesiaEntry).where(AnaesthesiaEntry.uid == entry))
    assert stored.sheet.uid == sheet_a and stored.addendum is True
    # A sheet started after the discharge is still refused as a conflict.
    after = b.post([b.op("anaesthesia.start", {"sheet": str(uuid.uuid4()),
                                               "patient": patient.uid}, nurse)]).get_json()
    assert after["results"][0]["status"] == "conflict"


def test_a_pdf_that_failed_blocks_discharge_saying_why_and_nothing_changes(app, clinic):
    from kiosk.documents.models import DOC_FAILED

    patient = factories.patient_make(clinic, "Biscuit")
    long_sheet(patient, clinic.user(3), hours=1, drugs=1)
    document = db.session.scalar(select(Document))
    document.status, document.last_error = DOC_FAILED, "PDF failed (try 5): no fonts"
    db.session.commit()
    with pytest.raises(DomainError) as refused:
        patient_discharge(patient=patient, user=clinic.user(4))
    assert refused.value.code == "discharge_blocked"
    assert "could not be made (PDF failed (try 5): no fonts)" in refused.value.message
    db.session.rollback()
    assert patient.status == "admitted"
    assert db.session.scalar(select(func.count(Document.id))) == 1
