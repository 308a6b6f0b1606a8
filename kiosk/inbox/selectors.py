"""Reads of the staff inbox: one person's tasks and messages, the nav's count, and the
open tasks of the patients on a board (one query for all of them)."""

import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import selectinload

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.clock import to_local
from ..core.errors import DomainError
from ..core.models import row_by_uid
from ..devices.models import Device
from ..extensions import db
from ..staff.models import StaffSession, User
from ..staff.sessions import staff_sessions_dead
from ..whiteboards.sources import BoardTask
from .models import (
    SENDER_SOURCE,
    TASK_DONE,
    TASK_OPEN,
    StaffMessage,
    StaffMessageRead,
    StaffTask,
)

RECENT_DONE = timedelta(hours=24)  # completed tasks stay listed (collapsed) this long
MESSAGES_KEPT = timedelta(days=14)  # messages older than this leave the inbox
PENDING_AHEAD = timedelta(hours=12)  # a task due within this puts its patient on pending boards

ERR_RECIPIENT = "Choose who the message is for: a person or everyone of a level."
RECIPIENT_RE = re.compile(r"^(user|level):(\d{1,9})$")
SENDER_RE = re.compile(rf"^{re.escape(SENDER_SOURCE)}u_(\d{{1,9}})$")  # services.sender_source


@dataclass(frozen=True)
class InboxTask:
    """A task as the inbox lists it."""

    task: StaffTask
    overdue: bool


@dataclass(frozen=True)
class InboxMessage:
    """A message as the inbox lists it, with whether this person has read it and who wrote
    it (None: a flow's)."""

    message: StaffMessage
    read: bool
    sender: User | None = None


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
        select(StaffMessage, read.label("read")).options(selectinload(StaffMessage.patient),
                                                         selectinload(StaffMessage.to_user))
        .where(_message_is_for(user), StaffMessage.sent_at >= now - MESSAGES_KEPT)
        .order_by(read, StaffMessage.sent_at.desc(), StaffMessage.id.desc()))
    rows = rows.all()
    senders = _senders([m for m, _ in rows])
    inbox.messages = [InboxMessage(message=m, read=bool(r), sender=senders.get(m.source))
                      for m, r in rows]
    inbox.unread = sum(1 for m in inbox.messages if not m.read)
    return inbox


def _senders(messages) -> dict[str, User]:
    """The people who wrote these messages, by their source ("staff:u_5"), in one query."""
    ids = {}
    for message in messages:
        match = SENDER_RE.match(message.source or "")
        if match:
            ids[int(match.group(1))] = message.source
    if not ids:
        return {}
    users = db.session.scalars(select(User).where(User.id.in_(sorted(ids))))
    return {ids[user.id]: user for user in users}


def inbox_message(message: StaffMessage, *, read: bool) -> InboxMessage:
    """One message as the inbox lists it (the row an htmx request gets back)."""
    return InboxMessage(message=message, read=read,
                        sender=_senders([message]).get(message.source))


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


def message_recipient(value) -> tuple[User | None, int | None]:
    """The inbox form's "to" ("user:12" or "level:5") as (active person, None) or (None,
    level), or DomainError on the field."""
    match = RECIPIENT_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise DomainError("recipient", ERR_RECIPIENT, field="to")
    kind, number = match.group(1), int(match.group(2))
    if kind == "level":
        return None, number  # the service checks the level's range
    user = db.session.get(User, number)
    if user is None or not user.active:
        raise DomainError("recipient", ERR_RECIPIENT, field="to")
    return user, None


def message_tablets(uids, connection=None) -> list[tuple[str, int, str]]:
    """Where the recipients of these messages (by uid) are signed in now on a paired tablet:
    (message uid, the tablet's device id, the recipient's public id), one row each.

    The server knows who is on a tablet only from a PIN sign-in made on it (a StaffSession
    with its device): the lock screen unlocks on the tablet alone, and a password sign-in
    names no device. A sign-in made before the tablet was last paired died with that
    pairing, and a revoked tablet hears nothing. Reads on `connection` (a committing
    transaction's) or one of its own; whether each sign-in is still live is staff's rule."""
    uids = sorted(set(uids))
    if not uids:
        return []
    for_them = or_(User.id == StaffMessage.to_user_id, User.level == StaffMessage.to_level)
    query = (select(StaffMessage.uid, StaffSession.device_id, User.public_id_expr(),
                    StaffSession.id)
             .join(User, for_them)
             .join(StaffSession, StaffSession.user_id == User.id)
             .join(Device, Device.id == StaffSession.device_id)
             .where(StaffMessage.uid.in_(uids), User.active.is_(True),
                    StaffSession.auth == "pin", StaffSession.ended_at.is_(None),
                    Device.kind == "tablet", Device.revoked_at.is_(None),
                    or_(Device.paired_at.is_(None), StaffSession.started_at >= Device.paired_at))
             .order_by(StaffSession.device_id, StaffMessage.uid, User.id))
    with nullcontext(connection) if connection is not None else db.engine.connect() as conn:
        rows = conn.execute(query).all()
    dead = staff_sessions_dead(row[3] for row in rows)
    return list(dict.fromkeys((uid, device_id, who) for uid, device_id, who, session_id in rows
                              if session_id not in dead))
