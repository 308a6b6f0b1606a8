"""Inbox services: a task or message created once per key, who may complete a task, a
closed task refused with nothing changed, cancelling, reading a person's and a role's
messages, and the boards poked for the task's patient."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from kiosk.core import clock, events
from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.extensions import db
from kiosk.inbox.models import StaffMessage, StaffMessageRead, StaffTask
from kiosk.inbox.services import (
    ERR_TASK_NOT_YOURS,
    ERR_WHO,
    staff_message_read,
    staff_message_send,
    staff_task_cancel,
    staff_task_complete,
    staff_task_create,
)
from kiosk.live.pokes import pokes_for, room_board
from tests import factories

from .helpers import count, message_make, task_make


def test_a_task_is_created_once_per_key(clinic, frozen_clock):
    patient = factories.patient_make(clinic)
    first = task_make(key="flow_step:1", patient=patient, assignee_level=3,
                      detail="EDTA tube", source="flow_step:abc")
    again = staff_task_create(key="flow_step:1", title="Something else",
                              due_at=clock.utcnow(), assignee=clinic.user(1))
    db.session.commit()
    assert again.id == first.id and again.title == "Bloods" and count(StaffTask) == 1
    assert first.status == "open" and first.assignee_level == 3 and first.source == "flow_step:abc"
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.entity_uid == first.uid)).all()
    assert [a.action for a in audit] == ["staff_task.create"]


def test_creating_a_task_records_the_change_for_the_patients_boards(clinic, frozen_clock):
    patient = factories.patient_make(clinic)
    task = staff_task_create(key="k", title="Bloods", due_at=clock.utcnow(), patient=patient,
                             assignee_level=2)
    recorded = [e for e in db.session.info["pending_events"] if e.name == "staff_task.changed"]
    assert [e.data for e in recorded] == [{"task": task.uid, "patient": patient.uid}]
    db.session.commit()


@pytest.mark.parametrize("fields, field, code", [
    ({"title": ""}, "title", "required"),
    ({"title": "x" * 201}, "title", "too_long"),
    ({"assignee_level": None}, "assignee", "recipient"),
    ({"assignee_level": 7}, "assignee", "out_of_range"),
    ({"assignee_level": "3"}, "assignee", "out_of_range"),
    ({"due_at": datetime(2026, 11, 22, 14, 0)}, "due_at", "bad_time"),
    ({"due_at": None}, "due_at", "bad_time"),
    ({"remind_at": "13:00"}, "remind_at", "bad_time"),
    ({"key": " "}, "key", "required"),
])
def test_a_bad_task_is_refused_and_nothing_is_created(clinic, frozen_clock, fields, field, code):
    data = {"key": "k", "title": "Bloods", "due_at": clock.utcnow(), "assignee_level": 3,
            **fields}
    audits = count(AuditEntry)
    with pytest.raises(DomainError) as caught:
        staff_task_create(**data)
    db.session.rollback()
    assert (caught.value.field, caught.value.code) == (field, code)
    assert count(StaffTask) == 0 and count(AuditEntry) == audits


def test_a_task_for_a_person_and_a_level_at_once_is_refused(clinic, frozen_clock):
    with pytest.raises(DomainError) as caught:
        staff_task_create(key="k", title="Bloods", due_at=clock.utcnow(),
                          assignee=clinic.user(2), assignee_level=2)
    db.session.rollback()
    assert caught.value.message == ERR_WHO and count(StaffTask) == 0


def test_who_may_complete_a_task(clinic, frozen_clock):
    for_level = task_make(key="a", assignee_level=3)
    for_person = task_make(key="b", assignee=clinic.user(2))
    for user, task in ((clinic.user(1), for_level), (clinic.user(2), for_level),
                       (clinic.user(3), for_person), (None, for_person)):
        with pytest.raises(DomainError) as caught:
            staff_task_complete(task=task, user=user)
        db.session.rollback()
        assert caught.value.status == 403 and caught.value.message == ERR_TASK_NOT_YOURS
    db.session.expire_all()
    assert {t.status for t in (for_level, for_person)} == {"open"}
    staff_task_complete(task=for_level, user=clinic.user(3))  # anyone of its level
    staff_task_complete(task=for_person, user=clinic.user(2))  # its person
    db.session.commit()
    assert for_level.done_by_id == clinic.user(3).id and for_person.status == "done"
    assert for_level.done_at == clock.utcnow()
    covered = task_make(key="c", assignee=clinic.user(1))
    staff_task_complete(task=covered, user=clinic.user(4))  # level 4 and up: anyone's
    db.session.commit()
    assert covered.status == "done"


def test_completing_tells_the_flows_in_the_same_transaction(clinic, frozen_clock, monkeypatch):
    heard = []
    monkeypatch.setitem(events._fact_handlers, "staff_task.completed",
                        [lambda task, user: heard.append((task.uid, user.id))])
    task = task_make(assignee_level=3)
    staff_task_complete(task=task, user=clinic.user(3))
    db.session.commit()
    assert heard == [(task.uid, clinic.user(3).id)]
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_uid == task.uid).order_by(AuditEntry.id)).all()
    assert actions == ["staff_task.create", "staff_task.complete"]


def test_a_closed_task_cannot_be_completed_or_cancelled_again(clinic, frozen_clock):
    done = task_make(key="a", assignee_level=3)
    staff_task_complete(task=done, user=clinic.user(3))
    db.session.commit()
    done_at = done.done_at
    frozen_clock.advance(minutes=10)
    cancelled = task_make(key="b", assignee_level=3)
    staff_task_cancel(task=cancelled, reason="Patient discharged")
    db.session.commit()
    audits = count(AuditEntry)
    for task, word in ((done, "done"), (cancelled, "cancelled")):
        for attempt in (lambda t: staff_task_complete(task=t, user=clinic.user(4)),
                        lambda t: staff_task_cancel(task=t, reason="again")):
            with pytest.raises(DomainError) as caught:
                attempt(task)
            db.session.rollback()
            assert caught.value.code == "task_closed"
            assert caught.value.message == f"This task is already {word}: nothing was changed."
    db.session.expire_all()
    assert (done.status, done.done_at, done.done_by_id) == ("done", done_at, clinic.user(3).id)
    assert (cancelled.status, cancelled.end_reason, cancelled.done_by_id) == (
        "cancelled", "Patient discharged", None)
    assert count(AuditEntry) == audits


def test_cancel_needs_a_reason(clinic, frozen_clock):
    task = task_make(assignee_level=3)
    with pytest.raises(DomainError) as caught:
        staff_task_cancel(task=task, reason=" ")
    db.session.rollback()
    db.session.expire_all()
    assert caught.value.field == "reason" and task.status == "open"


def test_a_message_is_sent_once_per_key_to_a_person_or_a_level(clinic, frozen_clock):
    patient = factories.patient_make(clinic)
    first = message_make(key="k", to_user=clinic.user(2), patient=patient, body="Ring at 4")
    again = staff_message_send(key="k", subject="Other", to_level=3)
    assert again.id == first.id and count(StaffMessage) == 1
    with pytest.raises(DomainError) as caught:
        staff_message_send(key="k2", subject="Hello")
    db.session.rollback()
    assert caught.value.field == "to" and count(StaffMessage) == 1


def test_a_persons_message_is_read_once_and_only_by_them(clinic, frozen_clock):
    message = message_make(to_user=clinic.user(2))
    with pytest.raises(DomainError) as caught:
        staff_message_read(message=message, user=clinic.user(4))
    db.session.rollback()
    db.session.expire_all()
    assert caught.value.status == 403 and message.read_at is None
    staff_message_read(message=message, user=clinic.user(2))
    db.session.commit()
    read_at = message.read_at
    frozen_clock.advance(minutes=5)
    staff_message_read(message=message, user=clinic.user(2))
    db.session.commit()
    assert message.read_at == read_at == datetime.fromisoformat("2026-11-22T12:00:00+00:00")
    assert count(StaffMessageRead) == 0


def test_a_roles_message_is_read_by_each_of_its_people(clinic, frozen_clock):
    from kiosk.staff.services import user_create

    other_nurse = user_create(name="Nurse Two", level=3, pin="3434", username="nurse2",
                              password="password-n2")
    message = message_make(to_level=3)
    staff_message_read(message=message, user=clinic.user(3))
    staff_message_read(message=message, user=clinic.user(3))
    db.session.commit()
    assert count(StaffMessageRead) == 1 and message.read_at is None
    staff_message_read(message=message, user=other_nurse)
    db.session.commit()
    assert count(StaffMessageRead) == 2
    with pytest.raises(DomainError):
        staff_message_read(message=message, user=clinic.user(4))
    db.session.rollback()
    assert count(StaffMessageRead) == 2


def test_a_task_change_pokes_the_boards_showing_its_patient(clinic, frozen_clock):
    patient = factories.patient_make(clinic)
    changed = events.DomainEvent("staff_task.changed", {"task": "t", "patient": patient.uid})
    rooms = [room for room, _ in pokes_for([changed])]
    assert room_board(clinic.board.id) in rooms
    no_patient = events.DomainEvent("staff_task.changed", {"task": "t", "patient": None})
    assert pokes_for([no_patient]) == []


def test_a_task_made_due_an_hour_ago_is_kept_as_given(clinic, frozen_clock):
    task = task_make(due_in=-timedelta(hours=1), assignee_level=1)
    assert task.due_at == clock.utcnow() - timedelta(hours=1)
