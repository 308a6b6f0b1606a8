"""An import that brings the practice-system record of a patient created at the bedside
links that patient (file number and name) instead of admitting a second one; its held
charges are released. Anything less certain admits as before, or refuses the file."""

import io

from sqlalchemy import func, select

from kiosk.billing.selectors import unsent_by_patient
from kiosk.core.audit import AuditEntry
from kiosk.discharge.selectors import discharge_blockers, pending_by_patient
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.intake.services import ERR_BEDSIDE_TWICE, patients_import
from kiosk.patients.models import Patient
from kiosk.treatments.models import Task
from kiosk.treatments.services import task_complete
from tests import factories

from .helpers import csv_bytes, problems

HEADER = "pims_id,name,species,file_number,weight_kg,owner_name"


def bedside(clinic, name="Rex", file_number="F-77", **fields):
    """A patient created directly (unallocated), with one charge held."""
    patient = factories.patient_make(clinic, name, file_number=file_number, **fields)
    assert patient.origin == "direct" and patient.unallocated
    order = factories.order_make(clinic, patient, name="Maropitant", billable_code="MAR10",
                                 price="12.50")
    task = db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).first()
    task_complete(task=task, user=clinic.user(3))
    db.session.commit()
    return patient


def count() -> int:
    return db.session.scalar(select(func.count(Patient.id)))


def test_a_bedside_patient_is_linked_and_its_held_charges_released(clinic, frozen_clock):
    rex = bedside(clinic, "Rex", "F-77")
    assert unsent_by_patient([rex.id])[rex.id] == {"unsent": 1, "held": 1}
    assert [b.code for b in discharge_blockers(rex)] == ["charges_held"]
    patients = count()
    # The practice system's spelling and spacing differ from what the tablet typed.
    summary = patients_import(user=clinic.user(4), filename="p.csv", content=csv_bytes(
        HEADER, "P-900, REX ,canine, f-77 ,31.5,Ann Smith"))
    allocated = [e.data for e in db.session.info["pending_events"]
                 if e.name == "patient.allocated"]
    assert allocated == [{"patient": rex.uid}]  # sending follows it
    db.session.commit()
    assert (summary.linked, summary.created, summary.updated, summary.unchanged) == (1, 0, 0, 0)
    assert summary.as_dict()["linked"] == 1
    db.session.expire_all()
    assert count() == patients
    assert (rex.pims_id, rex.unallocated, rex.origin, rex.status) == (
        "P-900", False, "direct", "admitted")
    assert (rex.owner_name, str(rex.weight_kg)) == ("Ann Smith", "31.500")
    assert (rex.name, rex.file_number) == ("REX", "f-77")  # the practice system's words win
    assert unsent_by_patient([rex.id])[rex.id] == {"unsent": 1, "held": 0}
    assert pending_by_patient([rex]) == {}
    assert discharge_blockers(rex) == []
    before = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "patient.update")).one().detail["before"]
    assert before["pims_id"] is None
    file_entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "patients.import"))
    assert file_entry.detail["linked"] == 1
    # The next import finds it by its practice-system id, like any other.
    again = patients_import(user=clinic.user(4), filename="p.csv", content=csv_bytes(
        HEADER, "P-900,REX,canine,f-77,32,Ann Smith"))
    db.session.commit()
    assert (again.linked, again.updated) == (0, 1)


def test_what_is_not_certain_admits_a_patient_as_before(clinic, frozen_clock, do_import):
    rex = bedside(clinic, "Rex", "F-77")
    gone = bedside(clinic, "Tom", "F-80")
    patient_discharge(patient=gone, user=clinic.user(6), override_reason="Paid at the desk")
    db.session.commit()
    nameless = bedside(clinic, "Bella", None)
    summary = do_import(csv_bytes(
        HEADER,
        "P-1,Rexy,canine,F-77,,",       # another name: a slip or another animal
        "P-2,Rex,canine,,,",            # no file number in the export
        "P-3,Tom,feline,F-80,,",        # that bedside patient was discharged
        "P-4,Bella,canine,F-81,,"))     # the bedside patient had no file number
    assert (summary.created, summary.linked) == (4, 0)
    db.session.expire_all()
    for patient in (rex, gone, nameless):
        assert patient.pims_id is None and patient.unallocated is True


def test_two_bedside_patients_with_that_file_number_and_name_refuse_the_file(
        clinic, frozen_clock, refused):
    bedside(clinic, "Rex", "F-77", cage="1")
    bedside(clinic, "Rex", "F-77", cage="2")  # made on two tablets during an outage
    error = refused(csv_bytes(HEADER, "P-5,Tom,feline,,,", "P-900,Rex,canine,F-77,,"))
    assert problems(error) == [(3, "file_number", ERR_BEDSIDE_TWICE.format(
        count=2, number="F-77", name="Rex"))]
    assert "link the right one to the practice system by hand" in error.errors[0].message


def test_two_rows_naming_one_bedside_patient_refuse_the_file(clinic, frozen_clock, refused):
    bedside(clinic, "Rex", "F-77")
    error = refused(csv_bytes(HEADER, "P-900,Rex,canine,F-77,,", "P-901,Rex,canine,F-77,,"))
    [(row, field, message)] = problems(error)
    assert (row, field) == (3, "file_number")
    assert message == ("Rex, created at the bedside, would also be linked by row 2: a patient "
                       "is linked to one practice-system record.")


def test_a_bad_row_refuses_a_linking_file_and_links_nothing(clinic, frozen_clock, refused):
    rex = bedside(clinic, "Rex", "F-77")
    error = refused(csv_bytes(HEADER, "P-900,Rex,canine,F-77,heavy,"))
    assert [(row, field) for row, field, _m in problems(error)] == [(2, "weight_kg")]
    db.session.expire_all()
    assert rex.pims_id is None and rex.unallocated is True
    assert pending_by_patient([rex]) == {rex.id: ["unallocated — 1 charge held"]}


def test_the_upload_page_says_how_many_were_linked(clinic, client, login, frozen_clock):
    bedside(clinic, "Rex", "F-77")
    login(clinic.user(4))
    response = client.post("/intake/", content_type="multipart/form-data", data={
        "file": (io.BytesIO(csv_bytes(HEADER, "P-900,Rex,canine,F-77,,")), "p.csv")})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<strong>1</strong> created at the bedside, now linked" in html
