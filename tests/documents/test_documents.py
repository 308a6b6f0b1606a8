"""Archived documents: finalising queues the PDF with the sheet, the worker renders it once,
a failure is retried and reported with the finalised data intact, deliveries go out once."""

import hashlib
import io
import socket
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader
from sqlalchemy import func, select

from kiosk.anaesthesia.models import AnaesthesiaEntry
from kiosk.anaesthesia.services import anaesthesia_record
from kiosk.core.errors import DomainError
from kiosk.documents import delivery, worker
from kiosk.documents.models import DOC_FAILED, DOC_QUEUED, DOC_READY, Document, DocumentDelivery
from kiosk.documents.selectors import documents_for_source
from kiosk.documents.services import document_queue, document_retry
from kiosk.documents.worker import documents_work
from kiosk.extensions import db
from tests import factories
from tests.support.anaesthesia import long_sheet


def _finalised_sheet(clinic, name="Biscuit"):
    patient = factories.patient_make(clinic, name, pims_id="P-100")
    return patient, long_sheet(patient, clinic.user(3), hours=1, drugs=3)


def _later(minutes=60):
    from datetime import timedelta

    from kiosk.core.clock import utcnow
    return utcnow() + timedelta(minutes=minutes)


def test_finalising_queues_the_pdf_in_the_same_commit_and_the_worker_archives_it(app, clinic):
    patient, sheet = _finalised_sheet(clinic)
    [document] = documents_for_source(sheet.uid)
    assert document.status == DOC_QUEUED and document.kind == "anaesthesia"
    assert "TPLO, left stifle" in document.html and document.pdf is None
    assert documents_work() == {"rendered": 1, "failed": 0, "waiting": 0, "delivered": 0}
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    assert document.status == DOC_READY and document.pdf.startswith(b"%PDF")
    assert document.sha256 == hashlib.sha256(document.pdf).hexdigest()
    assert document.pages == len(PdfReader(io.BytesIO(document.pdf)).pages) >= 1
    assert "Biscuit" in PdfReader(io.BytesIO(document.pdf)).pages[0].extract_text()
    # Worked again: nothing is rendered twice, the archived bytes never change.
    before = document.pdf
    assert documents_work()["rendered"] == 0
    db.session.expire_all()
    assert db.session.get(Document, document.id).pdf == before


def test_an_addendum_never_changes_the_archived_document_and_is_archived_apart(app, clinic):
    _, sheet = _finalised_sheet(clinic)
    documents_work()
    [document] = documents_for_source(sheet.uid)
    archived = (document.html, document.sha256)
    note = anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="note",
                              data={"text": "Recovered well, extubated"})
    db.session.commit()
    assert documents_work()["rendered"] == 1
    db.session.expire_all()
    again, addendum = documents_for_source(sheet.uid)
    assert (again.html, again.sha256) == archived and "Recovered well" not in again.html
    assert addendum.kind == "addendum" and addendum.status == DOC_READY
    assert "Recovered well, extubated" in addendum.html and "addenda" in addendum.title
    assert "Recovered well" in PdfReader(io.BytesIO(addendum.pdf)).pages[0].extract_text()
    assert db.session.get(AnaesthesiaEntry, note.id).document_id == addendum.id


def test_the_addenda_of_one_unit_of_work_share_one_document(app, clinic):
    _, sheet = _finalised_sheet(clinic)
    first = [anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="vitals",
                                data={"hr": hr}) for hr in (88, 91, 94)]
    db.session.commit()
    later = anaesthesia_record(sheet=sheet, user=clinic.user(4), kind="event",
                               data={"event": "extubation"})
    db.session.commit()
    _sheet_doc, one, two = documents_for_source(sheet.uid)
    assert {e.document_id for e in first} == {one.id} and later.document_id == two.id
    assert all(f"HR {hr} bpm" in one.html for hr in (88, 91, 94))
    assert "Extubation" in two.html and "HR 88" not in two.html
    # Committed, a document never changes: a third addendum makes a third one.
    anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="note", data={"text": "Home"})
    db.session.commit()
    db.session.expire_all()
    assert "Home" not in db.session.get(Document, two.id).html
    assert len(documents_for_source(sheet.uid)) == 4


def test_a_tablets_batch_of_addenda_is_one_document_naming_who_recorded_each(app, clinic,
                                                                            client):
    from tests.support.tablet import Tablet, now_z

    _, sheet = _finalised_sheet(clinic)
    documents_work()
    tablet, nurse = Tablet(client, "Blue"), clinic.user(3)
    answer = tablet.post([tablet.op("anaesthesia.record", {
        "entry": f"00000000-0000-4000-8000-00000000000{n}", "sheet": sheet.uid,
        "kind": "vitals", "data": {"hr": hr}}, nurse, at=now_z())
        for n, hr in enumerate((80, 82, 84))]).get_json()
    assert [r["status"] for r in answer["results"]] == ["applied"] * 3
    db.session.expire_all()
    _sheet_doc, addendum = documents_for_source(sheet.uid)
    rows = addendum.html[addendum.html.index("<tbody>"):addendum.html.index("</tbody>")]
    assert rows.count("<tr>") == 3 and rows.count(f"<td>{nurse.name}</td>") == 3


def test_an_addendum_after_a_discharge_in_the_same_batch_gets_a_document_of_its_own(
        app, clinic, client):
    from tests.support.tablet import Tablet

    patient, sheet = _finalised_sheet(clinic)
    documents_work()
    tablet, vet = Tablet(client, "Blue"), clinic.user(5)

    def note(n, text):
        return tablet.op("anaesthesia.record", {
            "entry": f"00000000-0000-4000-8000-00000000001{n}", "sheet": sheet.uid,
            "kind": "note", "data": {"text": text}}, vet)

    answer = tablet.post([note(1, "Before the discharge"),
                          tablet.op("patient.discharge", {"patient": patient.uid}, vet),
                          note(2, "After the discharge")]).get_json()
    assert [r["status"] for r in answer["results"]] == ["applied"] * 3
    db.session.expire_all()
    _sheet_doc, first, second = documents_for_source(sheet.uid)
    # The discharge closed the first as it stood: what came after is a document of its own.
    assert first.status == DOC_QUEUED and "After the discharge" not in first.html
    assert second.status == DOC_QUEUED and "After the discharge" in second.html
    assert "Before the discharge" not in second.html
    assert documents_work()["rendered"] == 3  # both, and the discharge summary
    db.session.expire_all()
    first, second = db.session.get(Document, first.id), db.session.get(Document, second.id)
    assert first.status == second.status == DOC_READY
    assert "Before the discharge" in PdfReader(io.BytesIO(first.pdf)).pages[0].extract_text()


def test_an_addendum_undone_with_its_savepoint_leaves_no_document_behind(app, clinic):
    _, sheet = _finalised_sheet(clinic)
    with pytest.raises(DomainError):
        with db.session.begin_nested():
            anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="note",
                               data={"text": "Undone"})
            raise DomainError("test", "an op that failed after recording")
    kept = anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="note",
                              data={"text": "Kept"})
    db.session.commit()
    _sheet_doc, addendum = documents_for_source(sheet.uid)
    assert kept.document_id == addendum.id
    assert "Kept" in addendum.html and "Undone" not in addendum.html


def test_a_failing_pdf_is_retried_then_reported_and_the_sheet_stays_intact(app, clinic,
                                                                          monkeypatch, caplog):
    _, sheet = _finalised_sheet(clinic)
    entries = db.session.scalar(select(func.count(AnaesthesiaEntry.id)))
    real = worker.pdf_render
    monkeypatch.setattr(worker, "pdf_render", lambda doc: (_ for _ in ()).throw(
        OSError("disk on fire")))
    assert documents_work()["failed"] == 1
    [document] = documents_for_source(sheet.uid)
    assert document.status == DOC_QUEUED and document.attempts == 1
    assert "PDF failed (try 1): OSError" in document.last_error
    assert documents_work()["failed"] == 0  # not due again yet: it backs off
    for hours in range(1, 5):
        documents_work(now=_later(60 * hours))
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    assert document.status == DOC_FAILED and document.attempts == 5
    assert "given up" in caplog.text and "disk on fire" not in caplog.text
    assert db.session.scalar(select(func.count(AnaesthesiaEntry.id))) == entries
    assert sheet.status == "finalised" and "TPLO" in document.html
    # A manager asks again: it is rendered from the same finalised HTML.
    monkeypatch.setattr(worker, "pdf_render", real)
    with pytest.raises(DomainError) as refused:
        document_retry(document=document, user=clinic.user(5))
    assert refused.value.code == "forbidden" and document.status == DOC_FAILED
    document_retry(document=document, user=clinic.user(6))
    db.session.commit()
    assert documents_work()["rendered"] == 1
    db.session.expire_all()
    assert db.session.get(Document, document.id).status == DOC_READY


def test_retrying_what_has_not_failed_is_refused_and_changes_nothing(app, clinic):
    _, sheet = _finalised_sheet(clinic)
    [document] = documents_for_source(sheet.uid)
    with pytest.raises(DomainError) as refused:
        document_retry(document=document, user=clinic.user(6))
    assert refused.value.code == "not_failed"
    assert document.status == DOC_QUEUED and document.attempts == 0


def test_two_workers_never_render_the_same_document(app, clinic):
    _, sheet = _finalised_sheet(clinic)
    [document] = documents_for_source(sheet.uid)
    seen = document.next_try_at
    now = _later(0)
    assert worker._claim(Document, document.id, seen, now) is True
    assert worker._claim(Document, document.id, seen, now) is False  # the other worker


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd), collecting what it is sent."""
    inbox = _Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd's own check cannot use port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, inbox
    controller.stop()


def test_ready_documents_go_to_the_folder_and_by_email_once(app, clinic, tmp_path, smtp_server):
    controller, inbox = smtp_server
    app.config.update(KIOSK_SMTP_HOST="127.0.0.1", KIOSK_SMTP_PORT=controller.port,
                      KIOSK_SMTP_FROM="records@clinic.test")
    clinic.settings.documents_folder = str(tmp_path)
    clinic.settings.documents_email = "records@practice.test"
    db.session.commit()
    _, sheet = _finalised_sheet(clinic)
    assert documents_work() == {"rendered": 1, "failed": 0, "waiting": 0, "delivered": 2}
    [document] = documents_for_source(sheet.uid)
    [saved] = list(tmp_path.rglob("*.pdf"))
    assert saved.read_bytes() == document.pdf and "P-100" in saved.parent.name
    assert not list(tmp_path.rglob(".part-*"))
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["records@practice.test"]
    message = message_from_bytes(envelope.content, policy=default_policy)
    assert "Biscuit" in message["Subject"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == document.pdf
    assert documents_work()["delivered"] == 0  # once
    statuses = db.session.scalars(select(DocumentDelivery.status)).all()
    assert statuses == ["sent", "sent"]


def test_a_delivery_that_fails_is_retried_and_reported(app, clinic, tmp_path):
    clinic.settings.documents_email = "records@practice.test"
    clinic.settings.documents_connector = True
    db.session.commit()
    _finalised_sheet(clinic)
    assert documents_work()["failed"] == 2
    errors = sorted(db.session.scalars(select(DocumentDelivery.last_error)))
    assert errors == ["No SMTP server is configured (KIOSK_SMTP_HOST). (try 1)",
                      "No practice-system connector is installed. (try 1)"]
    got = []
    delivery.connector_register("pims", lambda doc, pdf: got.append((doc.uid, len(pdf))))
    try:
        documents_work(now=_later(5))
    finally:
        delivery.connector_unregister()
    assert len(got) == 1
    connector = db.session.scalar(select(DocumentDelivery).where(
        DocumentDelivery.channel == "connector"))
    assert connector.status == "sent" and connector.last_error is None


def test_merged_pdf_waits_for_its_parts(app, clinic):
    patient, sheet = _finalised_sheet(clinic)
    merged = document_queue(patient=patient, kind="merged", source_uid=None,
                            title="Discharge documents", html=None)
    db.session.commit()
    counts = documents_work()
    assert counts["rendered"] >= 1
    while any(documents_work(now=_later(1)).values()):
        pass
    db.session.expire_all()
    merged = db.session.get(Document, merged.id)
    [part] = documents_for_source(sheet.uid)
    assert merged.status == DOC_READY and merged.pages == part.pages


def test_the_documents_page_lists_and_serves_pdfs_to_staff_only(app, clinic, client, login):
    patient, sheet = _finalised_sheet(clinic, "Biscuit <i>x</i>")
    [document] = documents_for_source(sheet.uid)
    assert client.get(f"/documents/{document.uid}.pdf").status_code in (302, 401)
    login(clinic.user(1))
    page = client.get(f"/patients/{patient.uid}/documents")
    assert page.status_code == 200 and b"PDF being made" in page.data
    assert b"<i>x</i>" not in page.data
    assert client.get(f"/documents/{document.uid}.pdf").status_code == 404
    documents_work()
    response = client.get(f"/documents/{document.uid}.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert client.post(f"/documents/{document.uid}/retry").status_code == 403


def test_where_documents_go_is_checked_and_a_bad_value_changes_nothing(app, clinic, client,
                                                                       login, tmp_path):
    login(clinic.user(5))
    assert client.get("/admin/documents").status_code == 403
    login(clinic.user(6))
    assert client.get("/admin/documents").status_code == 200
    missing = tmp_path / "nowhere"
    for data, field, text in (
            ({"documents_folder": str(missing)}, "documents_folder", b"is not a folder"),
            ({"documents_folder": "relative/path"}, "documents_folder", b"is not a folder"),
            ({"documents_email": "records@clinic.test, not-an-address"}, "documents_email",
             b"is not an e-mail address")):
        refused = client.post("/admin/documents", data=data)
        assert refused.status_code == 422 and text in refused.data
        assert f'id="{field}-error"'.encode() in refused.data
        db.session.expire_all()
        assert clinic.settings.documents_folder is None
        assert clinic.settings.documents_email is None
    saved = client.post("/admin/documents", data={
        "documents_folder": str(tmp_path), "documents_email": "a@clinic.test; b@clinic.test",
        "documents_merge_at_discharge": "1"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert clinic.settings.documents_folder == str(tmp_path)
    assert clinic.settings.documents_email == "a@clinic.test, b@clinic.test"
    assert clinic.settings.documents_merge_at_discharge is True
    assert clinic.settings.documents_connector is False


def test_the_queue_audit_names_the_document(app, clinic):
    from kiosk.core.audit import AuditEntry

    _, sheet = _finalised_sheet(clinic)
    [document] = documents_for_source(sheet.uid)
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "document.queue"))
    assert audit.entity_uid == document.uid is not None


def test_a_patient_folder_never_leaves_the_documents_folder(app, clinic, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    clinic.settings.documents_folder = str(root)
    db.session.commit()
    patient = factories.patient_make(clinic, "ポチ", pims_id="..")
    long_sheet(patient, clinic.user(3), hours=1, drugs=1)
    documents_work()
    [saved] = list(tmp_path.rglob("*.pdf"))
    assert saved.parent.parent == root and saved.parent.name.startswith(patient.uid[:8])


def test_a_merge_whose_part_failed_fails_instead_of_waiting_for_ever(app, clinic, monkeypatch):
    patient, sheet = _finalised_sheet(clinic)
    [part] = documents_for_source(sheet.uid)
    part.status = DOC_FAILED
    merged = document_queue(patient=patient, kind="merged", source_uid=None,
                            title="Discharge documents", html=None)
    db.session.commit()
    for hours in range(1, 7):
        documents_work(now=_later(60 * hours))
    db.session.expire_all()
    merged = db.session.get(Document, merged.id)
    assert merged.status == DOC_FAILED and "it failed" in merged.last_error


def test_a_delivery_that_breaks_unexpectedly_is_retried_and_reported(app, clinic, smtp_server):
    controller, inbox = smtp_server
    app.config.update(KIOSK_SMTP_HOST="127.0.0.1", KIOSK_SMTP_PORT="not-a-port")
    clinic.settings.documents_email = "records@practice.test"
    db.session.commit()
    patient = factories.patient_make(clinic, "Biscuit\nBcc: someone@else.test")
    long_sheet(patient, clinic.user(3), hours=1, drugs=1)
    assert documents_work()["failed"] == 1
    delivery_row = db.session.scalar(select(DocumentDelivery))
    assert delivery_row.last_error == "KIOSK_SMTP_PORT is not a port number. (try 1)"
    app.config.update(KIOSK_SMTP_PORT=controller.port, KIOSK_SMTP_USER="clinic",
                      KIOSK_SMTP_PASSWORD="secret-pass")
    assert documents_work(now=_later(1))["failed"] == 1
    db.session.expire_all()
    assert "without encryption" in db.session.scalar(select(DocumentDelivery.last_error))
    assert inbox.messages == []
    app.config.update(KIOSK_SMTP_USER=None)
    assert documents_work(now=_later(10))["delivered"] == 1
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["records@practice.test"]  # the name's line break added none
    message = message_from_bytes(envelope.content, policy=default_policy)
    assert "\n" not in message["Subject"] and message["Bcc"] is None
