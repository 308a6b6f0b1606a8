"""Writes of the staff inbox: tasks for a person or a role, and internal messages.

Flows create them (keys make a retried step create nothing twice); staff complete tasks
and read messages on /inbox. Nothing here commits: the caller owns the transaction."""

from datetime import datetime

from sqlalchemy import select

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_ORDERS, permission_check
from ..core.errors import DomainError
from ..core.events import event_record, fact_record
from ..core.models import new_uid
from ..core.validate import text_optional, text_required
from ..extensions import db
from .models import (
    SENDER_SOURCE,
    TASK_CANCELLED,
    TASK_DONE,
    TASK_OPEN,
    StaffMessage,
    StaffMessageRead,
    StaffTask,
)

LEVELS = range(1, 7)
# Anyone of this level or above may complete a task given to someone else (a vet covering).
LEVEL_COMPLETE_ANY_TASK = LEVEL_ORDERS
# Who may write a message to colleagues on the inbox's form: those who give orders (vets)
# and up. Anyone may receive one; flows send theirs whoever set them up.
LEVEL_SEND_MESSAGE = LEVEL_ORDERS

ERR_KEY = "A task or message needs a key (what makes asking twice create it once)."
ERR_WHO = "Give the task to one person or to one level, not both and not neither."
ERR_WHO_MESSAGE = "Send the message to one person or to one level, not both and not neither."
ERR_LEVEL = "The level must be a whole number from 1 to 6."
ERR_TIME = "{label} must be a date and time with its time zone."
ERR_TASK_CLOSED = "This task is already {status}: nothing was changed."
ERR_TASK_NOT_YOURS = ("Only the person it is for, anyone of its level, or level 4 and up "
                      "may complete this task.")
ERR_MESSAGE_NOT_YOURS = "This message was not sent to you."
STATUS_WORDS = {TASK_DONE: "done", TASK_CANCELLED: "cancelled"}


def _key(key) -> str:
    """The idempotency key, required, at most 200 characters."""
    if not isinstance(key, str) or not key.strip():
        raise DomainError("required", ERR_KEY, field="key")
    return text_required(key, "key", "The key", 200)


def _level(level, field: str) -> int | None:
    """A level 1..6 or None."""
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise DomainError("out_of_range", ERR_LEVEL, field=field)
    return level


def _aware(value, field: str, label: str, *, required: bool) -> datetime | None:
    """An aware datetime (as UTC), or None when allowed."""
    if value is None and not required:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise DomainError("bad_time", ERR_TIME.format(label=label), field=field)
    return clock.as_utc(value)


def _one_recipient(user, level, *, field: str, message: str) -> int | None:
    """The checked level, after making sure exactly one of a person and a level is given."""
    level = _level(level, field)
    if (user is None) == (level is None):
        raise DomainError("recipient", message, field=field)
    return level


def staff_task_create(*, key: str, title: str, due_at, patient=None, assignee=None,
                      assignee_level: int | None = None, detail: str | None = None,
                      remind_at=None, source: str | None = None) -> StaffTask:
    """Create an open task for a person or a level, once per `key` (asking again with the
    same key returns the first task, changed or not)."""
    key = _key(key)
    existing = db.session.scalar(select(StaffTask).where(StaffTask.key == key))
    if existing is not None:
        return existing
    task = StaffTask(
        uid=new_uid(), key=key, title=text_required(title, "title", "The task's title", 200),
        detail=text_optional(detail, "detail", "The task's detail", 4000), patient=patient,
        assignee=assignee, due_at=_aware(due_at, "due_at", "The due time", required=True),
        assignee_level=_one_recipient(assignee, assignee_level, field="assignee",
                                      message=ERR_WHO),
        remind_at=_aware(remind_at, "remind_at", "The reminder time", required=False),
        status=TASK_OPEN, created_at=clock.utcnow(),
        source=text_optional(source, "source", "The source", 200))
    db.session.add(task)
    _task_changed(task, action="staff_task.create", user=None,
                  detail={"title": task.title, "source": task.source})
    return task


def _task_changed(task: StaffTask, *, action: str, user, detail: dict) -> None:
    """Audit the change and tell the boards (the patient's row) after commit."""
    audit_record(action=action, entity="staff_task", entity_uid=task.uid, user=user,
                 detail=detail)
    event_record(db.session, "staff_task.changed", task=task.uid,
                 patient=task.patient.uid if task.patient is not None else None)


def staff_task_may_complete(task: StaffTask, user) -> bool:
    """Whether `user` may complete the task: the person it is for, anyone of its level,
    or anyone of level 4 and up. The one rule the page's buttons and the service use."""
    if user is None:
        return False
    return (task.assignee_id is not None and task.assignee_id == user.id
            or task.assignee_level is not None and task.assignee_level == user.level
            or user.level >= LEVEL_COMPLETE_ANY_TASK)


def _open_check(task: StaffTask) -> None:
    """A done or cancelled task cannot change again."""
    if task.status != TASK_OPEN:
        raise DomainError("task_closed", ERR_TASK_CLOSED.format(
            status=STATUS_WORDS.get(task.status, task.status)))


def staff_task_complete(*, task, user, at=None) -> StaffTask:
    """Mark an open task done by `user` (at `at`, else now); flows hear of it through the
    fact "staff_task.completed"."""
    _open_check(task)
    if not staff_task_may_complete(task, user):
        raise DomainError("forbidden", ERR_TASK_NOT_YOURS, status=403)
    task.status = TASK_DONE
    task.done_at = _aware(at, "at", "The time done", required=False) or clock.utcnow()
    task.done_by = user
    _task_changed(task, action="staff_task.complete", user=user, detail={"title": task.title})
    fact_record("staff_task.completed", task=task, user=user)
    return task


def staff_task_cancel(*, task, reason: str) -> StaffTask:
    """Cancel an open task (a discharged patient, a flow that ended), saying why."""
    _open_check(task)
    task.end_reason = text_required(reason, "reason", "The reason", 200)
    task.status = TASK_CANCELLED
    task.done_at = clock.utcnow()
    _task_changed(task, action="staff_task.cancel", user=None, detail={"reason": task.end_reason})
    return task


def sender_source(user) -> str:
    """The source of a message `user` wrote ("staff:u_5"): who sent it, for the inbox."""
    return f"{SENDER_SOURCE}{user.public_id}"


def staff_message_send(*, key: str, subject: str, to_user=None, to_level: int | None = None,
                       patient=None, body: str | None = None, source: str | None = None,
                       sender=None) -> StaffMessage:
    """Send an internal message to a person or a level, once per `key`. `sender`: the person
    who wrote it on the inbox's form (of level LEVEL_SEND_MESSAGE and up), kept as its
    source ("staff:u_5"); none for a flow's. After commit the recipients' tablets hear of
    it (live.pokes)."""
    if sender is not None:
        permission_check(sender, LEVEL_SEND_MESSAGE, "send staff messages")
        source = sender_source(sender)
    key = _key(key)
    existing = db.session.scalar(select(StaffMessage).where(StaffMessage.key == key))
    if existing is not None:
        return existing
    message = StaffMessage(
        uid=new_uid(), key=key, subject=text_required(subject, "subject", "The subject", 200),
        body=text_optional(body, "body", "The message", 10000), to_user=to_user,
        to_level=_one_recipient(to_user, to_level, field="to", message=ERR_WHO_MESSAGE),
        patient=patient, sent_at=clock.utcnow(),
        source=text_optional(source, "source", "The source", 200))
    db.session.add(message)
    audit_record(action="staff_message.send", entity="staff_message", entity_uid=message.uid,
                 user=sender, detail={"subject": message.subject, "source": message.source})
    event_record(db.session, "staff_message.sent", message=message.uid,
                 patient=patient.uid if patient is not None else None)
    return message


def staff_message_is_for(message: StaffMessage, user) -> bool:
    """Whether the message was sent to `user`, or to `user`'s level."""
    return user is not None and (message.to_user_id == user.id
                                 or message.to_level is not None and message.to_level == user.level)


def staff_message_read(*, message, user) -> StaffMessage:
    """Mark a message read by `user`: a person's message once, a role's message for each
    of its people (a StaffMessageRead row). Reading it again changes nothing."""
    if not staff_message_is_for(message, user):
        raise DomainError("forbidden", ERR_MESSAGE_NOT_YOURS, status=403)
    if message.to_user_id is not None:
        if message.read_at is None:
            message.read_at = clock.utcnow()
        return message
    seen = db.session.scalar(select(StaffMessageRead.id).where(
        StaffMessageRead.message_id == message.id, StaffMessageRead.user_id == user.id))
    if seen is None:
        db.session.add(StaffMessageRead(message_id=message.id, user_id=user.id,
                                        read_at=clock.utcnow()))
    return message
