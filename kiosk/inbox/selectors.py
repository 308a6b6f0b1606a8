"""Reads of the staff inbox: one person's tasks and messages, the nav's count, and the
open tasks of the patients on a board (one query for all of them)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import selectinload

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.clock import to_local
from ..core.models import row_by_uid
from ..extensions import db
from ..whiteboards.sources import BoardTask
from .models import TASK_DONE, TASK_OPEN, StaffMessage, StaffMessageRead, StaffTask

RECENT_DONE = timedelta(hours=24)  # completed tasks stay listed (collapsed) this long
MESSAGES_KEPT = timedelta(days=14)  # messages older than this leave the inbox
PENDING_AHEAD = timedelta(hours=12)  # a task due within this puts its patient on pending boards


@dataclass(frozen=True)
class InboxTask:
    """A task as the inbox lists it."""

    task: StaffTask
    overdue: bool


@dataclass(frozen=True)
class InboxMessage:
    """A message as the inbox lists it, with whether this person has read it."""

    message: StaffMessage
    read: bool


@dataclass
class Inbox:
    """One person's inbox: open tasks (overdue first, then due soonest), tasks done in the
    last day, messages (unread first, newest first) and the counts."""

    tasks: list[InboxTask] = field(default_factory=list)
    done: list[StaffTask] = field(default_factory=list)
    messages: list[InboxMessage] = field(default_factory=list)
    overdue: int = 0
    unread: int = 0

    @property
    def open_count(self) -> int:
        """What waits for this person: open tasks and unread messages."""
        return len(self.tasks) + self.unread


def _task_is_for(user):
    """Tasks given to `user` or to `user`'s level."""
    return or_(StaffTask.assignee_id == user.id, StaffTask.assignee_level == user.level)


def _message_is_for(user):
    """Messages sent to `user` or to `user`'s level."""
    return or_(StaffMessage.to_user_id == user.id, StaffMessage.to_level == user.level)


def _message_read_by(user):
    """Whether `user` has read the message: its own read time, or the role's read row."""
    role_read = exists().where(StaffMessageRead.message_id == StaffMessage.id,
                               StaffMessageRead.user_id == user.id)
    return or_(and_(StaffMessage.to_user_id.is_not(None), StaffMessage.read_at.is_not(None)),
               and_(StaffMessage.to_user_id.is_(None), role_read))


def inbox_for(user, *, now: datetime | None = None) -> Inbox:
    """The user's inbox at `now`, in a fixed handful of queries whatever its length."""
    now = now or clock.utcnow()
    inbox = Inbox()
    open_tasks = db.session.scalars(
        select(StaffTask).options(selectinload(StaffTask.patient))
        .where(_task_is_for(user), StaffTask.status == TASK_OPEN)
        .order_by(StaffTask.due_at, StaffTask.id))
    # Due soonest first puts the longest overdue on top, then the rest by due time.
    inbox.tasks = [InboxTask(task=t, overdue=t.due_at < now) for t in open_tasks]
    inbox.overdue = sum(1 for t in inbox.tasks if t.overdue)
    inbox.done = list(db.session.scalars(
        select(StaffTask).options(selectinload(StaffTask.patient),
                                  selectinload(StaffTask.done_by))
        .where(_task_is_for(user), StaffTask.status == TASK_DONE,
               StaffTask.done_at >= now - RECENT_DONE)
        .order_by(StaffTask.done_at.desc(), StaffTask.id.desc())))
    read = _message_read_by(user)
    rows = db.session.execute(
        select(StaffMessage, read.label("read")).options(selectinload(StaffMessage.patient))
        .where(_message_is_for(user), StaffMessage.sent_at >= now - MESSAGES_KEPT)
        .order_by(read, StaffMessage.sent_at.desc(), StaffMessage.id.desc()))
    inbox.messages = [InboxMessage(message=m, read=bool(r)) for m, r in rows]
    inbox.unread = sum(1 for m in inbox.messages if not m.read)
    return inbox


def inbox_open_count(user, now: datetime | None = None) -> int:
    """Open tasks and unread recent messages for `user`, in one COUNT query (the nav's
    badge on every page)."""
    now = now or clock.utcnow()
    tasks = select(func.count(StaffTask.id)).where(
        _task_is_for(user), StaffTask.status == TASK_OPEN).scalar_subquery()
    messages = select(func.count(StaffMessage.id)).where(
        _message_is_for(user), StaffMessage.sent_at >= now - MESSAGES_KEPT,
        ~_message_read_by(user)).scalar_subquery()
    return db.session.scalar(select(tasks + messages)) or 0


def tasks_by_patient(patients, *, due_before: datetime | None = None
                     ) -> dict[int, list[StaffTask]]:
    """Each patient's open tasks (due before `due_before`, if given), due soonest first,
    in one query (for the boards)."""
    ids = [p.id for p in patients]
    if not ids:
        return {}
    query = select(StaffTask).where(StaffTask.patient_id.in_(ids), StaffTask.status == TASK_OPEN)
    if due_before is not None:
        query = query.where(StaffTask.due_at < due_before)
    out: dict[int, list[StaffTask]] = {}
    for task in db.session.scalars(query.order_by(StaffTask.due_at, StaffTask.id)):
        out.setdefault(task.patient_id, []).append(task)
    return out


def board_tasks(patients) -> dict[int, list[BoardTask]]:
    """The boards' "tasks" source: each patient's open staff tasks as chips to draw."""
    return {patient_id: [BoardTask(title=t.title, due_at=t.due_at) for t in tasks]
            for patient_id, tasks in tasks_by_patient(patients).items()}


def board_pending(patients) -> dict[int, list[str]]:
    """The pending boards' labels for open tasks overdue or due in the next hours:
    "Task: Bloods due 14:00" (clinic time)."""
    tz = settings_zone()
    soon = tasks_by_patient(patients, due_before=clock.utcnow() + PENDING_AHEAD)
    return {patient_id: [f"Task: {t.title} due {to_local(t.due_at, tz):%H:%M}" for t in tasks]
            for patient_id, tasks in soon.items()}


def staff_task_by_uid(uid: str) -> StaffTask:
    """The staff task with this uid, or NotFound."""
    return row_by_uid(StaffTask, uid, what="task")


def staff_message_by_uid(uid: str) -> StaffMessage:
    """The staff message with this uid, or NotFound."""
    return row_by_uid(StaffMessage, uid, what="message")
