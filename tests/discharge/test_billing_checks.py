"""Discharge and billing: held and unsent charges and overdue tasks block a discharge (a
manager may override them with a reason); the summary lists the treatments given and the
charges; the pending board shows the charges held for an unallocated patient."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import event, func, select

from kiosk.billing.models import Charge
from kiosk.billing.services import connector_configure, connector_pause
from kiosk.core import clock
from kiosk.core.audit import AuditEntry
from kiosk.core.clock import format_iso_z
from kiosk.core.errors import DomainError
from kiosk.discharge.selectors import discharge_blockers, pending_by_patient
from kiosk.discharge.services import patient_discharge
from kiosk.documents.models import Document
from kiosk.documents.worker import documents_work
from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.patients.services import patient_update
from kiosk.staff.models import User
from kiosk.treatments.models import Task
from kiosk.treatments.services import order_stop, task_complete, task_skip
from kiosk.whiteboards.models import Board
from kiosk.whiteboards.selectors import board_grid, board_patients
from tests import factories
from tests.sync.conftest import SyncTablet


def tasks_of(order) -> list[Task]:
    return list(db.session.scalars(select(Task).where(Task.order_id == order.id)
                                   .order_by(Task.due_at)))


def billable(clinic, patient, **fields):
    return factories.order_make(clinic, patient, **{
        "name": "Maropitant", "billable_code": "MAR10", "price": "12.50", **fields})


def charged(clinic, patient, count=1):
    """A billable order with `count` of its tasks done (a charge each); the order."""
    order = billable(clinic, patient)
    for task in tasks_of(order)[:count]:
        task_complete(task=task, user=clinic.user(3))
    db.session.commit()
    return order


def codes(patient) -> list[str]:
    db.session.expire_all()
    return [b.code for b in discharge_blockers(patient)]


def refused(patient, user, **kwargs) -> DomainError:
    """The discharge is refused; after the rollback nothing changed."""
    documents = db.session.scalar(select(func.count(Document.id)))
    with pytest.raises(DomainError) as caught:
        patient_discharge(patient=patient, user=user, **kwargs)
    db.session.rollback()
    assert patient.status == "admitted" and patient.discharged_at is None
    assert patient.discharge_override is None
    assert db.session.scalar(select(func.count(Document.id))) == documents
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "patient.discharge")) == 0
    return caught.value


# --- charges held and not sent -----------------------------------------------------------

def test_held_charges_block_until_the_patient_is_linked(clinic, frozen_clock):
    patient = factories.patient_make(clinic, "Rex")  # created here: unallocated
    charged(clinic, patient, count=2)
    [blocker] = discharge_blockers(patient)
    assert blocker.code == "charges_held"
    assert blocker.message == ("2 charges (total 25.00) are held until Rex is linked to the "
                               "practice system record.")
    error = refused(patient, clinic.user(4))
    assert error.code == "discharge_blocked" and blocker.message in error.message
    patient_update(patient=patient, user=clinic.user(4), data={"pims_id": "P-77"})
    db.session.commit()
    assert codes(patient) == []  # released; nothing is sent by itself without a webhook
    patient_discharge(patient=patient, user=clinic.user(4))
    db.session.commit()
    assert patient.status == "discharged"


def test_held_charges_block_whether_or_not_sending_is_configured(clinic, frozen_clock):
    patient = factories.patient_make(clinic, "Rex")
    charged(clinic, patient)
    connector_configure(user=clinic.user(6), kind="webhook", webhook_url="http://pims.test/c")
    db.session.commit()
    assert codes(patient) == ["charges_held"]  # held, and said once (not also as unsent)


def test_unsent_charges_block_only_when_sending_is_configured_and_they_are_late(
        clinic, frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    charged(clinic, patient, count=3)
    assert codes(patient) == []  # exported by hand: no "sent" to wait for
    connector_configure(user=clinic.user(6), kind="webhook", webhook_url="http://pims.test/c")
    db.session.commit()
    assert codes(patient) == []  # captured a moment ago: on their way
    frozen_clock.advance(minutes=3)
    [blocker] = discharge_blockers(patient)
    assert blocker.code == "charges_unsent"
    assert blocker.message == ("3 charges (total 37.50) for Biscuit have not reached the "
                               "practice system yet (see Billing settings: sending may be "
                               "paused or failing).")
    connector_pause(user=clinic.user(6), paused=True, reason="Upgrade")
    db.session.commit()
    assert codes(patient) == ["charges_unsent"]  # paused: they still have not gone
    for charge in db.session.scalars(select(Charge)):
        charge.sent_at = clock.utcnow()  # what the sender does once the PIMS has them
    db.session.commit()
    assert codes(patient) == []


def test_a_manager_overrides_charge_blockers_with_a_reason(clinic, frozen_clock):
    patient = factories.patient_make(clinic, "Rex")
    charged(clinic, patient)
    error = refused(patient, clinic.user(5), override_reason="Owner paying at the desk")
    assert error.code == "forbidden"
    error = refused(patient, clinic.user(6), override_reason="x" * 501)
    assert error.field == "override_reason" and "Reason" in error.message
    patient_discharge(patient=patient, user=clinic.user(6),
                      override_reason="Owner paying at the desk")
    db.session.commit()
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "patient.discharge"))
    assert audit.detail["overridden"] == ["charges_held"]
    assert patient.discharge_override == "Owner paying at the desk"


# --- overdue tasks -------------------------------------------------------------------------

def test_overdue_billable_tasks_block_naming_each_due_time(app, frozen_clock):
    clinic = factories.clinic_make(timezone="Europe/Berlin")
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    start = clock.utcnow()  # 12:00 UTC, 13:00 in Berlin
    paid = billable(clinic, patient)
    plain = factories.order_make(clinic, patient, name="Methadone")
    frozen_clock.advance(hours=8, minutes=30)  # 12:00, 16:00 and 20:00 are past
    blockers = discharge_blockers(patient)
    assert [b.code for b in blockers] == ["task_overdue_billable"]  # Methadone has no price
    assert blockers[0].message == ("Maropitant (billable) is overdue, not done or skipped: "
                                   "due Sun 22 Nov 13:00, Sun 22 Nov 17:00, Sun 22 Nov 21:00.")
    # Done, skipped or stopped is not overdue; a task due later is not either.
    first, second, third = tasks_of(paid)[:3]
    task_complete(task=first, user=clinic.user(3), at=start)
    task_skip(task=second, user=clinic.user(3), reason="Vomiting")
    order_stop(order=plain, user=clinic.user(4))
    db.session.commit()
    [blocker] = discharge_blockers(patient)
    assert blocker.code == "task_overdue_billable"
    assert blocker.message.endswith("due Sun 22 Nov 21:00.")
    error = refused(patient, clinic.user(4))
    assert "Maropitant (billable) is overdue" in error.message
    task_complete(task=third, user=clinic.user(3))
    db.session.commit()
    assert codes(patient) == []


def test_an_order_long_overdue_names_a_few_due_times_and_counts_the_rest(clinic, frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    factories.order_make(clinic, patient, name="Walk", kind="task", every_hours=1,
                         billable_code="WALK", price="3.00")
    frozen_clock.advance(hours=10, minutes=16)  # 11 hourly tasks past the 15-minute grace
    [blocker] = discharge_blockers(patient)
    assert blocker.code == "task_overdue_billable"
    assert blocker.message.count("Sun 22 Nov") == 6 and blocker.message.endswith(
        " and 5 more.")
    frozen_clock.set(clock.utcnow().replace(minute=14))  # within the grace: due, not overdue
    assert discharge_blockers(patient)[0].message.endswith(" and 4 more.")


def test_a_tablet_discharge_counts_tasks_due_before_it_not_before_it_arrived(
        clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    order = billable(clinic, patient)
    task_complete(task=tasks_of(order)[0], user=clinic.user(3))  # the 12:00 dose
    db.session.commit()
    tablet = SyncTablet(client, "Blue")
    discharged_at = clock.utcnow() + timedelta(minutes=30)
    frozen_clock.advance(hours=6)  # the tablet was offline; 16:00 came and went
    patient_id = patient.id
    result = tablet.send("patient.discharge", {"patient": patient.uid}, clinic.user(4),
                         at=format_iso_z(discharged_at))
    assert result["status"] == "applied"
    patient = db.session.get(Patient, patient_id)
    assert patient.status == "discharged" and patient.discharged_at == discharged_at


def test_a_tablet_discharge_with_an_overdue_dose_is_a_conflict(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    billable(clinic, patient)
    frozen_clock.advance(hours=1)
    patient_id = patient.id
    result = SyncTablet(client, "Blue").send("patient.discharge", {"patient": patient.uid},
                                              clinic.user(4))
    assert result["status"] == "conflict"
    assert result["result"]["conflict"] == "discharge_blocked"
    assert "Maropitant (billable) is overdue" in result["result"]["message"]
    assert db.session.get(Patient, patient_id).status == "admitted"


def test_the_discharge_page_lists_the_new_checks(clinic, client, login, frozen_clock):
    patient = factories.patient_make(clinic, "Rex")
    charged(clinic, patient)
    frozen_clock.advance(hours=5)
    login(clinic.user(4))
    page = client.get(f"/patients/{patient.uid}/discharge")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "blocker-charges_held" in html and "blocker-task_overdue_billable" in html
    assert "held until Rex is linked" in html
    answer = client.post(f"/patients/{patient.uid}/discharge")
    assert answer.status_code == 409 and "cannot be discharged yet" in answer.get_data(
        as_text=True)
    db.session.expire_all()
    assert patient.status == "admitted"


# --- the discharge summary ---------------------------------------------------------------

def test_the_summary_lists_treatments_given_and_skipped_and_every_charge(
        clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    temperature = factories.order_make(
        clinic, patient, name="Temperature", kind="observation", value_type="number",
        value_units="°C", billable_code="OBS1", price="4.20", dose=None, units=None, route=None)
    maropitant = billable(clinic, patient, every_hours=24)
    t1, t2, t3 = tasks_of(temperature)[:3]
    task_complete(task=t1, user=clinic.user(3), value="38.6")
    task_complete(task=tasks_of(maropitant)[0], user=clinic.user(2))
    db.session.commit()
    frozen_clock.advance(hours=4)
    task_skip(task=t2, user=clinic.user(3), reason="Patient sleeping")
    db.session.commit()
    frozen_clock.advance(hours=4, minutes=40)  # the tablet was offline for 40 minutes
    patient_id, vet_id = patient.id, clinic.user(4).id
    assert SyncTablet(client, "Blue").send(
        "task.complete", {"task": t3.uid, "value": "39.1"}, clinic.user(3),
        at=format_iso_z(t3.due_at))["status"] == "applied"
    patient_discharge(patient=db.session.get(Patient, patient_id),
                      user=db.session.get(User, vet_id))
    db.session.commit()
    summary = db.session.scalar(select(Document).where(Document.kind == "discharge"))
    html = summary.html
    assert "Treatments given" in html and "Charges" in html
    assert "Temperature" in html and "38.6 °C" in html and "39.1 °C" in html
    assert "Skipped: Patient sleeping" in html
    assert html.count("Level 3") >= 3 and "Level 2" in html
    assert "MAR10 · Maropitant" in html and "OBS1 · Temperature" in html
    assert "12.50" in html and "4.20" in html
    assert "offline on Blue" in html and html.count('class="offline"') == 1
    assert "20.90" in html  # 12.50 + 4.20 + 4.20
    documents_work()
    db.session.expire_all()
    summary = db.session.get(Document, summary.id)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(summary.pdf)).pages)
    for words in ("Treatments given", "Skipped: Patient sleeping", "38.6 °C",
                  "MAR10 · Maropitant", "offline on Blue", "Total", "20.90"):
        assert words in text, words


def test_the_summary_says_none_when_nothing_was_given_or_charged(clinic, frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    patient_discharge(patient=patient, user=clinic.user(4))
    db.session.commit()
    html = db.session.scalar(select(Document.html).where(Document.kind == "discharge"))
    assert "None recorded." in html and "No charges." in html


def test_the_summary_takes_the_same_few_queries_however_long_the_stay(clinic, frozen_clock):
    from kiosk.discharge.services import discharge_archive

    def queries_for(name, done):
        patient = factories.patient_make(clinic, name, pims_id=f"P-{name}")
        order = billable(clinic, patient, every_hours=1)
        for task in tasks_of(order)[:done]:
            task_complete(task=task, user=clinic.user(3))
        db.session.commit()
        db.session.expire_all()
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            discharge_archive(patient=patient, user=clinic.user(4))
            db.session.flush()
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        db.session.rollback()
        return statements

    few, many = queries_for("Few", 1), queries_for("Many", 12)
    assert few == many, many


# --- the pending board ---------------------------------------------------------------------

def test_held_charges_show_on_the_pending_board_until_the_patient_is_linked(
        clinic, client, login, frozen_clock):
    rex = factories.patient_make(clinic, "Rex", cage="1")
    factories.patient_make(clinic, "Tom", cage="2")  # unallocated, nothing charged
    linked = factories.patient_make(clinic, "Biscuit", cage="3", pims_id="P-1")
    charged(clinic, rex, count=2)
    charged(clinic, linked)  # not sent, but not held: not pending
    board = Board(name="Pending", kind="pending")
    db.session.add(board)
    db.session.commit()
    assert pending_by_patient([rex]) == {rex.id: ["unallocated — 2 charges held"]}
    assert [p.name for p in board_patients(board)] == ["Rex"]
    assert board_grid(board).rows[0].pending == ["unallocated — 2 charges held"]
    login(clinic.user(1))
    page = client.get(f"/boards/{board.id}")
    assert page.status_code == 200 and "unallocated — 2 charges held" in page.get_data(
        as_text=True)
    patient_update(patient=rex, user=clinic.user(4), data={"pims_id": "P-2"})
    db.session.commit()
    assert pending_by_patient([rex]) == {}
    assert board_patients(board) == []


def test_a_bad_pims_id_links_nothing_and_the_charges_stay_held(clinic, frozen_clock):
    rex = factories.patient_make(clinic, "Rex")
    factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    charged(clinic, rex)
    for bad, field in (("P-1", "pims_id"), ("x" * 65, "pims_id")):
        with pytest.raises(DomainError) as caught:
            patient_update(patient=rex, user=clinic.user(4), data={"pims_id": bad})
        db.session.rollback()
        assert caught.value.field == field
        db.session.expire_all()
        assert rex.pims_id is None and rex.unallocated is True
        assert pending_by_patient([rex]) == {rex.id: ["unallocated — 1 charge held"]}
    assert Decimal(db.session.scalar(select(func.sum(Charge.total)))) == Decimal("12.50")


def test_a_charge_by_hand_pokes_the_pending_boards(clinic, client, login, socketio_client,
                                                   frozen_clock):
    from kiosk.billing.services import charge_add, item_save

    rex = factories.patient_make(clinic, "Rex")
    board = Board(name="Pending", kind="pending")
    db.session.add(board)
    item_save(user=clinic.user(6), data={"code": "BATH", "description": "Bath",
                                         "unit_price": "15.00"})
    db.session.commit()
    login(clinic.user(2))
    sio = socketio_client()
    sio.emit("join", {"rooms": [f"board:{board.id}"]}, callback=True)
    sio.get_received()
    charge_add(patient=rex, user=clinic.user(4), data={"item_code": "BATH"})
    db.session.commit()
    pokes = [evt["args"][0] for evt in sio.get_received() if evt["name"] == "poke"]
    assert [(p["board"], p["patient"]) for p in pokes] == [(board.id, rex.uid)]
    assert pending_by_patient([rex]) == {rex.id: ["unallocated — 1 charge held"]}
