"""Orders, tasks, completions, skips, stops and notes, against the database."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.extensions import db
from kiosk.treatments import services
from kiosk.treatments.models import Note, Order, Task, TaskCompletion
from kiosk.treatments.schedule import due_times, task_uid
from tests import factories

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_every_n_hours_makes_two_days_of_tasks_with_sync_uids(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW, every_hours=4)
    tasks = db.session.scalars(select(Task).where(Task.order_id == order.id)
                               .order_by(Task.due_at)).all()
    assert len(tasks) == 12  # 48 h / 4 h
    assert tasks[0].due_at == NOW and tasks[-1].due_at == NOW + timedelta(hours=44)
    expected = str(uuid.uuid5(uuid.UUID(order.uid), "2026-11-22T14:00:00Z"))
    assert tasks[1].uid == expected == task_uid(order.uid, NOW + timedelta(hours=4))


def test_set_times_follow_the_clinic_clock(app):
    clinic = factories.clinic_make(timezone="Europe/London")
    patient = factories.patient_make(clinic)
    start = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)  # summer time: London is UTC+1
    order = factories.order_make(clinic, patient, now=start, every_hours=None,
                                 times="08:00, 20:00", start=start)
    dues = db.session.scalars(select(Task.due_at).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).all()
    assert dues[0] == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert dues[1] == datetime(2026, 7, 1, 19, 0, tzinfo=UTC)
    assert len(dues) == 4


def test_end_limits_tasks_and_prn_makes_none():
    start = NOW
    dues = due_times(start=start, end=start + timedelta(hours=8), every_hours=4, times=[],
                     prn=False, after=None, until=start + timedelta(days=2), tz=UTC)
    assert dues == [start, start + timedelta(hours=4), start + timedelta(hours=8)]
    assert due_times(start=start, end=None, every_hours=None, times=[], prn=True, after=None,
                     until=start + timedelta(days=2), tz=UTC) == []


def test_extend_rolls_the_sheet_forward_without_duplicates(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW, every_hours=6)
    created = services.tasks_extend_all(now=NOW + timedelta(hours=24))
    db.session.commit()
    assert created == 4
    assert services.tasks_extend_all(now=NOW + timedelta(hours=24)) == 0
    uids = db.session.scalars(select(Task.uid).where(Task.order_id == order.id)).all()
    assert len(uids) == len(set(uids)) == 12


def test_complete_records_who_when_device_value_note(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW, kind="observation",
                                 name="Temperature", dose=None, units=None, route=None)
    task = order_tasks(order)[0]
    completion = services.task_complete(task=task, user=clinic.user(1), value="38.40",
                                        note="ate well", now=NOW + timedelta(minutes=3))
    db.session.commit()
    assert task.status == "done" and task.value == "38.4" and task.note == "ate well"
    assert task.done_by_id == clinic.user(1).id
    assert task.done_at == NOW + timedelta(minutes=3)
    assert completion.conflict is None
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "task.complete"))


def test_second_completion_is_kept_as_a_conflict_and_the_first_stands(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW)
    task = order_tasks(order)[0]
    services.task_complete(task=task, user=clinic.user(3), now=NOW)
    second = services.task_complete(task=task, user=clinic.user(1),
                                    now=NOW + timedelta(minutes=5))
    db.session.commit()
    assert second.conflict == "already_done" and second.duplicate
    assert task.done_by_id == clinic.user(3).id
    assert count(TaskCompletion) == 2


def test_completion_after_stop_is_recorded_and_flagged(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW)
    task = order_tasks(order)[1]
    services.order_stop(order=order, user=clinic.user(4), reason="vet", at=NOW)
    completion = services.task_complete(task=task, user=clinic.user(3),
                                        now=NOW + timedelta(hours=5))
    db.session.commit()
    assert completion.conflict == "order_stopped"
    assert task.status == "done"


def test_stop_cancels_open_tasks_and_keeps_done_ones(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW)
    first = order_tasks(order)[0]
    services.task_complete(task=first, user=clinic.user(2), now=NOW)
    services.order_stop(order=order, user=clinic.user(4), at=NOW + timedelta(minutes=10))
    db.session.commit()
    statuses = [t.status for t in order_tasks(order)]
    assert statuses[0] == "done" and set(statuses[1:]) == {"cancelled"}
    assert order.status == "stopped" and order.stopped_by_id == clinic.user(4).id


@pytest.mark.parametrize("value, code", [("abc", "not_a_number"), ("", "required"),
                                          ("NaN", "not_a_number"), (None, "required")])
def test_bad_observation_value_is_refused_and_changes_nothing(clinic, value, code):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW, kind="observation", name="HR",
                                 dose=None, units=None, route=None)
    task = order_tasks(order)[0]
    audits = count(AuditEntry)
    with pytest.raises(DomainError) as err:
        services.task_complete(task=task, user=clinic.user(1), value=value, now=NOW)
    db.session.rollback()
    assert err.value.code == code and err.value.field == "value"
    assert order_tasks(order)[0].status == "scheduled"
    assert count(TaskCompletion) == 0 and count(AuditEntry) == audits


@pytest.mark.parametrize("at, code", [(NOW + timedelta(hours=1), "bad_time"),
                                       (NOW - timedelta(hours=3), "outside_order")])
def test_a_time_outside_the_order_is_refused(clinic, at, code):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW)
    task = order_tasks(order)[0]
    with pytest.raises(DomainError) as err:
        services.task_complete(task=task, user=clinic.user(1), at=at, now=NOW)
    db.session.rollback()
    assert err.value.code == code and err.value.field == "at"
    assert order_tasks(order)[0].status == "scheduled" and count(TaskCompletion) == 0


@pytest.mark.parametrize("data, field", [
    ({"dose": "two"}, "dose"), ({"name": "  "}, "name"), ({"kind": "potion"}, "kind"),
    ({"times": "25:00"}, "times"), ({"every_hours": "0"}, "every_hours"),
    ({"route": "XX"}, "route"), ({"price": "1e9"}, "price"),
    ({"start": "2026-11-22T10:00", "end": "2026-11-22T09:00"}, "end"),
    ({"start": "yesterday"}, "start"), ({"times": "08:00", "every_hours": "4"}, "every_hours"),
])
def test_bad_order_is_refused_with_the_field_and_nothing_is_stored(clinic, data, field):
    patient = factories.patient_make(clinic)
    fields = {"name": "Meloxicam", "kind": "medication", "dose": "0.1", **data}
    with pytest.raises(DomainError) as err:
        services.order_create(user=clinic.user(5), patient=patient, data=fields, now=NOW)
    db.session.rollback()
    assert err.value.field == field
    assert count(Order) == 0 and count(Task) == 0


def test_levels_are_enforced_by_the_services(clinic):
    patient = factories.patient_make(clinic)
    with pytest.raises(DomainError) as err:
        services.order_create(user=clinic.user(3), patient=patient,
                              data={"name": "X", "kind": "task"}, now=NOW)
    assert err.value.code == "forbidden" and "level 4" in err.value.message
    db.session.rollback()
    order = factories.order_make(clinic, patient, now=NOW)
    with pytest.raises(DomainError):
        services.order_stop(order=order, user=clinic.user(3))
    db.session.rollback()
    assert db.session.get(Order, order.id).status == "active"


def test_skip_needs_a_reason_and_cannot_undo_a_done_task(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW)
    first, second = order_tasks(order)[:2]
    with pytest.raises(DomainError) as err:
        services.task_skip(task=second, user=clinic.user(1), reason=" ")
    assert err.value.field == "reason"
    db.session.rollback()
    services.task_complete(task=first, user=clinic.user(1), now=NOW)
    db.session.commit()
    with pytest.raises(DomainError) as err:
        services.task_skip(task=first, user=clinic.user(1), reason="asleep")
    assert err.value.code == "already_done"
    db.session.rollback()
    assert order_tasks(order)[0].status == "done"
    services.task_skip(task=second, user=clinic.user(1), reason="asleep")
    db.session.commit()
    assert order_tasks(order)[1].status == "skipped"


def test_notes_are_appended(clinic):
    patient = factories.patient_make(clinic)
    services.note_add(patient=patient, user=clinic.user(1), text="Ate well")
    services.note_add(patient=patient, user=clinic.user(2), text="Walked")
    db.session.commit()
    assert count(Note) == 2
    with pytest.raises(DomainError):
        services.note_add(patient=patient, user=clinic.user(1), text="")
    db.session.rollback()
    assert count(Note) == 2


def test_orders_only_for_admitted_patients(clinic):
    from kiosk.discharge.services import patient_discharge

    patient = factories.patient_make(clinic)
    patient_discharge(patient=patient, user=clinic.user(4))
    db.session.commit()
    with pytest.raises(DomainError) as err:
        services.order_create(user=clinic.user(5), patient=patient,
                              data={"name": "X", "kind": "task"}, now=NOW)
    assert err.value.code == "not_admitted"
    db.session.rollback()
    assert count(Order) == 0


def order_tasks(order):
    return db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).all()


def test_prn_doses_are_recorded_when_given(clinic):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, now=NOW, every_hours=None, prn=True)
    assert order_tasks(order) == []
    services.order_give_prn(order=order, user=clinic.user(3), note="painful", now=NOW)
    services.order_give_prn(order=order, user=clinic.user(3),
                            now=NOW + timedelta(hours=2))
    db.session.commit()
    tasks = order_tasks(order)
    assert [t.status for t in tasks] == ["done", "done"]
    assert tasks[0].uid == task_uid(order.uid, NOW) and tasks[0].note == "painful"
    regular = factories.order_make(clinic, patient, now=NOW)
    with pytest.raises(DomainError) as err:
        services.order_give_prn(order=regular, user=clinic.user(3), now=NOW)
    assert err.value.code == "not_prn"
