"""Reminders: each open task's reminder is sent once when its time comes, to whoever the
task is for, with the due time on the clinic's clock; done tasks are not reminded."""

from datetime import timedelta

from sqlalchemy import select

from kiosk.core.jobs import job_every, job_run_now
from kiosk.extensions import db
from kiosk.inbox.jobs import REMIND_JOB, reminders_send
from kiosk.inbox.models import StaffMessage
from kiosk.inbox.services import staff_task_complete
from tests import factories

from .helpers import count, task_make


def messages() -> list[StaffMessage]:
    """Every staff message as stored, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(StaffMessage).order_by(StaffMessage.id)))


def test_a_reminder_is_sent_once_when_its_time_comes(app, frozen_clock):
    clinic = factories.clinic_make(timezone="Australia/Sydney")  # UTC+11 in November
    patient = factories.patient_make(clinic)
    start = frozen_clock.now  # Sun 22 Nov 12:00 UTC
    task = task_make(patient=patient, assignee=clinic.user(2), due_in=timedelta(hours=1),
                     remind_at=start + timedelta(minutes=30), detail="EDTA tube")
    assert reminders_send() == 0 and messages() == []
    frozen_clock.advance(minutes=30)
    assert reminders_send() == 1
    [sent] = messages()
    assert sent.subject == "Reminder: Bloods is due Mon 23 Nov 00:00"
    assert sent.key == f"remind:{task.uid}" and sent.to_user_id == clinic.user(2).id
    assert sent.to_level is None and sent.patient_id == patient.id and sent.body == "EDTA tube"
    db.session.refresh(task)
    assert task.reminded_at == frozen_clock.now
    frozen_clock.advance(minutes=1)
    assert reminders_send() == 0 and count(StaffMessage) == 1


def test_a_roles_task_reminds_the_role_and_a_done_task_nobody(clinic, frozen_clock):
    start = frozen_clock.now
    for_role = task_make(key="a", assignee_level=3, remind_at=start + timedelta(minutes=5))
    done = task_make(key="b", assignee_level=3, remind_at=start + timedelta(minutes=5))
    task_make(key="c", assignee_level=3)  # no reminder asked
    staff_task_complete(task=done, user=clinic.user(3))
    db.session.commit()
    frozen_clock.advance(hours=3)  # long after: a late job still sends what is due
    assert reminders_send() == 1
    [sent] = messages()
    assert sent.to_level == 3 and sent.to_user_id is None
    assert sent.subject == "Reminder: Bloods is due Sun 22 Nov 14:00"
    assert sent.source == f"staff_task:{for_role.uid}"


def test_reminders_run_every_minute_on_the_job_queue(clinic, frozen_clock):
    task = task_make(assignee_level=3, remind_at=frozen_clock.now + timedelta(minutes=1))
    assert job_every(REMIND_JOB) == 1
    assert job_run_now(REMIND_JOB) == 0 and messages() == []
    frozen_clock.advance(minutes=1)
    assert job_run_now(REMIND_JOB) == 1  # the job is the reminders' sweep
    [sent] = messages()
    assert sent.key == f"remind:{task.uid}"


def test_a_task_with_the_longest_title_is_reminded_and_holds_nobody_up(app, frozen_clock):
    clinic = factories.clinic_make()
    patient = factories.patient_make(clinic)
    start = frozen_clock.now
    long_one = task_make(patient=patient, assignee=clinic.user(2), title="B" * 200,
                         due_in=timedelta(hours=1), remind_at=start)
    task_make(key="t2", patient=patient, assignee=clinic.user(2), due_in=timedelta(hours=1),
              remind_at=start + timedelta(seconds=1))
    frozen_clock.advance(minutes=1)
    assert reminders_send() == 2
    first, second = messages()
    assert first.subject.startswith("Reminder: " + "B" * 150 + " is due ")
    assert len(first.subject) <= 200 and first.key == f"remind:{long_one.uid}"
    assert second.subject.startswith("Reminder: Bloods is due")
