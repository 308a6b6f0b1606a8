"""A PRN dose is one service (`order_give_prn`) for the sheet and for sync: only as-needed
orders are given on demand, whichever way the dose arrives."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from kiosk.core import clock
from kiosk.core.clock import format_iso_z
from kiosk.devices.models import SyncOp
from kiosk.extensions import db
from kiosk.treatments.models import Task, TaskCompletion
from kiosk.treatments.schedule import task_uid
from tests import factories


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(Task)),
            db.session.scalar(select(func.count()).select_from(TaskCompletion)))


def dose_args(order, when) -> dict:
    """What a tablet's "Give now" sends: the dose's task uid, computed on the tablet."""
    return {"task": task_uid(order.uid, when), "order": order.uid,
            "due_at": format_iso_z(when), "note": "yelping"}


def test_a_dose_of_a_scheduled_order_over_sync_is_rejected_and_stores_nothing(
        clinic, tablet, frozen_clock):
    patient = factories.patient_make(clinic)
    scheduled = factories.order_make(clinic, patient)  # every 4 hours
    before = counts()
    when = frozen_clock.advance(minutes=7)  # between two of its due times
    result = tablet.send("order.give", dose_args(scheduled, when), clinic.user(3))
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "not_prn" and result["error"]["field"] == "order"
    assert "Only as-needed (PRN) orders" in result["error"]["message"]
    assert counts() == before, "no task and no completion made"
    record = db.session.scalar(select(SyncOp))
    assert record.status == "rejected"


def test_a_tablets_give_now_as_task_complete_is_refused_on_a_scheduled_order(
        clinic, tablet, frozen_clock):
    """The tablet's own numbering of an off-schedule task never adds one to a scheduled order."""
    patient = factories.patient_make(clinic)
    scheduled = factories.order_make(clinic, patient)
    before = counts()
    when = frozen_clock.advance(minutes=7)
    result = tablet.send("task.complete", dose_args(scheduled, when), clinic.user(3))
    assert result["status"] == "rejected" and result["error"]["field"] == "due_at"
    assert counts() == before


def test_a_dose_of_a_prn_order_is_given_by_either_op_like_the_sheet_gives_it(
        clinic, tablet, frozen_clock):
    patient = factories.patient_make(clinic)
    prn = factories.order_make(clinic, patient, every_hours=None, prn=True)
    assert counts() == (0, 0)
    for name in ("order.give", "task.complete"):
        when = frozen_clock.advance(minutes=30)
        args = dose_args(prn, when)
        result = tablet.send(name, args, clinic.user(3))
        assert result == {"id": result["id"], "seq": result["seq"], "status": "applied",
                          "result": {"task": args["task"]}}
        task = db.session.scalar(select(Task).where(Task.uid == args["task"]))
        assert (task.status, task.note, task.due_at) == ("done", "yelping", when)
    assert counts() == (2, 2)


def test_a_dose_whose_task_uid_is_not_the_orders_is_rejected(clinic, tablet, frozen_clock):
    patient = factories.patient_make(clinic)
    prn = factories.order_make(clinic, patient, every_hours=None, prn=True)
    args = {**dose_args(prn, clock.utcnow()), "task": str(uuid.uuid4())}
    result = tablet.send("order.give", args, clinic.user(3))
    assert (result["status"], result["error"]["code"], result["error"]["field"]) == (
        "rejected", "bad_args", "task")
    assert counts() == (0, 0)


def test_a_prn_dose_cannot_be_skipped_before_it_was_given(clinic, tablet, frozen_clock):
    patient = factories.patient_make(clinic)
    prn = factories.order_make(clinic, patient, every_hours=None, prn=True)
    args = {**dose_args(prn, clock.utcnow() + timedelta(minutes=1)), "reason": "asleep"}
    result = tablet.send("task.skip", args, clinic.user(3))
    assert result["status"] == "rejected" and result["error"]["code"] == "not_due"
    assert counts() == (0, 0)


def test_the_sheet_refuses_a_dose_of_a_scheduled_order_through_the_same_rule(
        clinic, client, login):
    patient = factories.patient_make(clinic)
    scheduled = factories.order_make(clinic, patient)
    before = counts()
    login(clinic.user(3))
    response = client.post(f"/orders/{scheduled.uid}/give", data={"note": "x"},
                           headers={"HX-Request": "true"})
    assert "Only as-needed (PRN) orders" in response.get_data(as_text=True)
    assert counts() == before
