"""The inbox's background work: reminders for tasks whose reminder time has come.

The task rows say what is due (remind_at set, reminded_at empty); the job each minute
sends what is due and marks it, so a job lost or run twice sends each reminder once
(the message's key is the task's too)."""

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.clock import moment_text
from ..core.jobs import job_periodic
from ..extensions import db
from .models import TASK_OPEN, StaffTask
from .services import staff_message_send

log = logging.getLogger(__name__)

REMIND_JOB = "inbox.remind"
BATCH = 200  # reminders per commit: a backlog after a long stop goes in several passes


def reminder_subject(task: StaffTask, tz) -> str:
    """The reminder's subject, e.g. "Reminder: Bloods is due Sun 22 Nov 14:00" (clinic time)."""
    return f"Reminder: {task.title[:150]} is due {moment_text(task.due_at, tz)}"


def _remind(task: StaffTask, tz, now: datetime) -> None:
    """Send the task's reminder to whoever the task is for."""
    staff_message_send(key=f"remind:{task.uid}", subject=reminder_subject(task, tz),
                       to_user=task.assignee, to_level=task.assignee_level,
                       patient=task.patient, body=task.detail,
                       source=f"staff_task:{task.uid}")


def reminders_send(now: datetime | None = None) -> int:
    """Send every reminder that is due at `now` (else the clock's now) for open tasks, once
    each; commits; how many were sent."""
    now = now or clock.utcnow()
    tz = settings_zone()
    sent = 0
    while True:
        due = list(db.session.scalars(
            select(StaffTask).options(selectinload(StaffTask.patient),
                                      selectinload(StaffTask.assignee))
            .where(StaffTask.status == TASK_OPEN, StaffTask.remind_at <= now,
                   StaffTask.reminded_at.is_(None))
            .order_by(StaffTask.remind_at, StaffTask.id).limit(BATCH)))
        for task in due:
            # Marked first, outside the savepoint: the write takes SQLite's lock (waiting its
            # turn) before the savepoint reads, and a failed reminder is not tried again
            # every minute (the log has it).
            task.reminded_at = now
            db.session.flush()
            try:
                with db.session.begin_nested():  # one bad reminder never holds up the rest
                    _remind(task, tz, now)
            except Exception:
                log.exception("the reminder of task %s could not be sent", task.uid)
        db.session.commit()
        sent += len(due)
        if len(due) < BATCH:
            return sent


def install_jobs() -> None:
    """Send due reminders every minute."""
    job_periodic(REMIND_JOB, reminders_send, every_minutes=1)
