"""Small builders the inbox tests share."""

from datetime import timedelta

from sqlalchemy import func, select

from kiosk.core import clock
from kiosk.extensions import db
from kiosk.inbox.services import staff_message_send, staff_task_create


def count(model) -> int:
    """Rows of `model` as stored (the session's cache set aside)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def task_make(*, key="t1", title="Bloods", due_in=timedelta(hours=2), **fields):
    """A committed staff task due `due_in` from the clock's now."""
    task = staff_task_create(key=key, title=title, due_at=clock.utcnow() + due_in, **fields)
    db.session.commit()
    return task


def message_make(*, key="m1", subject="Call the owner", **fields):
    """A committed staff message."""
    message = staff_message_send(key=key, subject=subject, **fields)
    db.session.commit()
    return message
