"""Charges are captured once, from what caused them: a billable task done (on the sheet or
a tablet, online or offline), a PRN dose, an anaesthesia drug, a form with a fee. A skip,
a stop or a conflict charges nothing; a correction is a reversing charge, never an edit."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kiosk.anaesthesia.services import anaesthesia_record, anaesthesia_start
from kiosk.billing.models import Charge
from kiosk.billing.services import charge_add, charge_reverse, item_save
from kiosk.core import clock
from kiosk.core.clock import format_iso_z
from kiosk.core.errors import DomainError
from kiosk.extensions import db
from kiosk.forms.services import form_finalise, form_start, form_template_create
from kiosk.treatments.models import Task
from kiosk.treatments.schedule import task_uid
from kiosk.treatments.services import task_complete, task_skip
from tests import factories


def charges() -> list[Charge]:
    db.session.expire_all()
    return list(db.session.scalars(select(Charge).order_by(Charge.id)))


def first_task(order) -> Task:
    return db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).first()


def billable(clinic, patient, **fields):
    return factories.order_make(clinic, patient, name="Maropitant", billable_code="MAR10",
                                price="12.50", **fields)


def test_a_billable_task_done_on_the_sheet_charges_once_with_everything_named(
        clinic, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-100")
    order = billable(clinic, patient)
    task = first_task(order)
    task_complete(task=task, user=clinic.user(3))
    db.session.commit()
    (charge,) = charges()
    assert charge.key == f"task:{task.uid}" and charge.cause == "task"
    assert (charge.item_code, charge.description) == ("MAR10", "Maropitant")
    assert charge.quantity == Decimal(1) and charge.unit_price == Decimal("12.50")
    assert charge.total == Decimal("12.50") and isinstance(charge.total, Decimal)
    assert charge.user_id == clinic.user(3).id and charge.device_id is None
    assert charge.performed_at == clock.utcnow() == charge.recorded_at
    assert charge.offline is False and charge.sent_at is None


def test_a_second_completion_a_skip_and_a_stopped_order_charge_nothing(clinic, frozen_clock):
    patient = factories.patient_make(clinic)
    order = billable(clinic, patient)
    tasks = list(db.session.scalars(select(Task).where(Task.order_id == order.id)
                                    .order_by(Task.due_at)))
    task_complete(task=tasks[0], user=clinic.user(3))
    db.session.commit()
    task_complete(task=tasks[0], user=clinic.user(2))  # a second device's completion: conflict
    task_skip(task=tasks[1], user=clinic.user(3), reason="vomiting")
    db.session.commit()
    assert len(charges()) == 1
    from kiosk.treatments.services import order_stop

    order_stop(order=order, user=clinic.user(5))
    db.session.commit()
    task_complete(task=tasks[2], user=clinic.user(3))  # after the stop: a conflict
    db.session.commit()
    assert len(charges()) == 1


def test_an_order_without_a_price_charges_nothing(clinic, frozen_clock):
    order = factories.order_make(clinic, factories.patient_make(clinic))
    task_complete(task=first_task(order), user=clinic.user(3))
    db.session.commit()
    assert charges() == []


def test_a_tablet_completion_resent_and_done_again_on_another_tablet_charges_once(
        clinic, client, frozen_clock):
    from tests.sync.conftest import SyncTablet

    patient = factories.patient_make(clinic)
    order = billable(clinic, patient)
    task = first_task(order)
    blue, green = SyncTablet(client, "Blue"), SyncTablet(client, "Green")
    op = blue.op("task.complete", {"task": task.uid}, clinic.user(3))
    second = clinic.user(2)
    _ = second.public_id  # loaded while the session is open
    blue_id = blue.device.id
    for _ in range(2):  # the answer was lost: the tablet sends the same op again
        db.session.remove()
        response = client.post("/api/sync", json={
            "device": blue.id, "sent_at": format_iso_z(clock.utcnow()), "ops": [op]},
            headers={"Authorization": f"Bearer {blue.token}"})
        assert response.status_code == 200
    assert response.get_json()["results"][0]["status"] == "duplicate"
    assert green.send("task.complete", {"task": task.uid}, second)["status"] == "conflict"
    (charge,) = charges()
    assert charge.device_id == blue_id and charge.offline is False


def test_an_action_that_reaches_the_server_late_is_flagged_offline(
        clinic, tablet, frozen_clock):
    patient = factories.patient_make(clinic)
    order = billable(clinic, patient)
    task = first_task(order)
    done_at = clock.utcnow()
    frozen_clock.advance(minutes=40)  # the tablet was offline for 40 minutes
    result = tablet.send("task.complete", {"task": task.uid}, clinic.user(3),
                         at=format_iso_z(done_at))
    assert result["status"] == "applied"
    (charge,) = charges()
    assert charge.offline is True
    assert charge.performed_at == done_at
    assert charge.recorded_at == done_at + timedelta(minutes=40)


def test_a_prn_dose_charges_once_per_dose(clinic, tablet, frozen_clock):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, name="Buprenorphine", prn=True,
                                 every_hours=None, billable_code="BUP", price="6.40")
    when = clock.utcnow()
    args = {"task": task_uid(order.uid, when), "order": order.uid,
            "due_at": format_iso_z(when)}
    assert tablet.send("order.give", args, clinic.user(3))["status"] == "applied"
    assert tablet.send("order.give", args, clinic.user(3))["status"] == "conflict"
    (charge,) = charges()
    assert charge.item_code == "BUP" and charge.total == Decimal("6.40")


def test_an_anaesthesia_drug_and_a_form_with_a_fee_charge_through_the_catalogue(
        clinic, frozen_clock):
    patient = factories.patient_make(clinic)
    item_save(user=clinic.user(6), data={"code": "PROP", "description": "Propofol",
                                         "unit_price": "21.00", "applies_to": "anaesthesia_drug",
                                         "match": "propofol"})
    item_save(user=clinic.user(6), data={"code": "CONS", "description": "Consent fee",
                                         "unit_price": "5", "applies_to": "form",
                                         "match": "Consent"})
    db.session.commit()
    sheet = anaesthesia_start(patient=patient, user=clinic.user(3))
    anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="drug",
                       data={"drug": "Propofol", "dose": "4", "units": "mg/kg", "route": "IV"})
    anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="drug",
                       data={"drug": "Methadone", "dose": "0.2", "route": "IM"})  # no item
    template = form_template_create(user=clinic.user(6), name="Consent",
                                    fields=[{"key": "ok", "label": "OK", "type": "text"}])
    db.session.flush()
    form = form_start(patient=patient, template=template, user=clinic.user(3))
    form_finalise(form=form, user=clinic.user(3))
    db.session.commit()
    assert [(c.item_code, c.total, c.cause) for c in charges()] == [
        ("PROP", Decimal("21.00"), "anaesthesia_drug"), ("CONS", Decimal("5.00"), "form")]


def test_a_correction_is_a_reversing_charge_and_happens_once(clinic, frozen_clock):
    patient = factories.patient_make(clinic)
    order = billable(clinic, patient)
    task_complete(task=first_task(order), user=clinic.user(3))
    db.session.commit()
    (charge,) = charges()
    reversal = charge_reverse(charge=charge, user=clinic.user(4), reason="given in error")
    db.session.commit()
    assert reversal.quantity == Decimal(-1) and reversal.total == Decimal("-12.50")
    assert reversal.reverses_id == charge.id and charge.total == Decimal("12.50")
    with pytest.raises(DomainError) as again:
        charge_reverse(charge=charge, user=clinic.user(4), reason="again")
    assert again.value.code == "already_reversed"
    db.session.rollback()
    assert len(charges()) == 2


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"item_code": "NOPE"}, "item_code", "There is no billing item with the code “NOPE”."),
    ({"item_code": "GAUZE", "unit_price": "ten"}, "unit_price", "Unit price must be a number."),
    ({"item_code": "GAUZE", "unit_price": "-1"}, "unit_price", "Unit price must be at least 0."),
    ({"item_code": "GAUZE", "unit_price": "250000"}, "unit_price",
     "Unit price must be at most 100000."),
    ({"item_code": "GAUZE", "unit_price": "1.005"}, "unit_price",
     "Unit price has more than two decimals."),
    ({"item_code": "GAUZE", "quantity": "0"}, "quantity", "Quantity must be at least 0.001."),
    ({"item_code": "GAUZE", "quantity": "1.0005"}, "quantity",
     "Quantity has more than three decimals."),
])
def test_a_bad_charge_by_hand_is_refused_naming_the_field_and_stores_nothing(
        clinic, frozen_clock, data, field, words):
    item_save(user=clinic.user(6), data={"code": "GAUZE", "description": "Gauze swabs",
                                         "unit_price": "1.20"})
    db.session.commit()
    patient = factories.patient_make(clinic)
    with pytest.raises(DomainError) as refused:
        charge_add(patient=patient, user=clinic.user(4), data=data)
    assert refused.value.field == field and refused.value.message == words
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Charge)) == 0


def test_a_sync_batch_worked_again_op_by_op_still_charges(clinic, client, frozen_clock):
    """A batch with one bad op is rolled back and worked op by op: the billable completion's
    charge, made in the rolled-back attempt, is made again in the one that commits."""
    from tests.sync.conftest import SyncTablet

    patient = factories.patient_make(clinic)
    order = billable(clinic, patient)
    task = first_task(order)
    tablet = SyncTablet(client, "Blue")
    ops = [tablet.op("task.complete", {"task": task.uid}, clinic.user(3)),
           tablet.op("task.complete", {"task": "not-a-uid"}, clinic.user(3))]
    db.session.remove()
    answer = client.post("/api/sync", json={
        "device": tablet.id, "sent_at": format_iso_z(clock.utcnow()), "ops": ops},
        headers={"Authorization": f"Bearer {tablet.token}"}).get_json()
    assert [r["status"] for r in answer["results"]] == ["applied", "rejected"]
    (charge,) = charges()
    assert charge.key == f"task:{task.uid}"
