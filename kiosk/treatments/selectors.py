"""Reads for the treatment sheet: a patient's orders × hours, in a handful of queries."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased, joinedload

from ..clinic.selectors import settings_get, settings_zone
from ..core import clock
from ..core.clock import local_day_bounds, to_local
from ..core.models import row_by_uid
from ..extensions import db
from ..patients.models import Patient
from ..staff.models import User
from .models import TASK_CANCELLED, TASK_DONE, TASK_SKIPPED, Note, Order, Task

STATES = ("overdue", "due", "scheduled", "done", "skipped", "stopped")
# How a task that is no longer open shows, whatever the clock says.
CLOSED_STATES = {TASK_DONE: "done", TASK_SKIPPED: "skipped", TASK_CANCELLED: "stopped"}


def task_state(status: str, due_at: datetime, now: datetime, grace: timedelta) -> str:
    """What colour a task shows: done, skipped, stopped, overdue, due or scheduled."""
    if status in CLOSED_STATES:
        return CLOSED_STATES[status]
    if now > due_at + grace:
        return "overdue"
    if now >= due_at - grace:
        return "due"
    return "scheduled"


@dataclass
class SheetTask:
    """One task as the sheet shows it."""

    uid: str
    due_at: datetime
    state: str
    value: str | None
    note: str | None
    done_at: datetime | None
    done_by: str | None
    skip_reason: str | None


@dataclass
class SheetRow:
    """An order and its tasks, by hour column."""

    order: Order
    cells: list[list[SheetTask]] = field(default_factory=list)
    created_by: str | None = None


@dataclass
class Sheet:
    """A patient's day: hour columns (UTC starts) and a row per order."""

    patient: Patient
    day: date
    hours: list[datetime]
    rows: list[SheetRow]
    notes: list[Note]
    now: datetime
    current_hour: int | None


def task_by_uid(uid: str) -> Task:
    """The task with this uid, its order and patient with it (every completion reads both),
    or NotFound."""
    return row_by_uid(Task, uid, what="task", field="task",
                      options=(joinedload(Task.order).joinedload(Order.patient),))


def order_by_uid(uid: str) -> Order:
    """The order with this uid, or NotFound."""
    return row_by_uid(Order, uid, what="order", field="order")


def sheet_for(patient: Patient, *, day: date | None = None, now: datetime | None = None) -> Sheet:
    """The treatment sheet of one clinic-local day (today by default)."""
    settings = settings_get()
    tz = settings_zone(settings)
    now = now or clock.utcnow()
    day = day or to_local(now, tz).date()
    start, end = local_day_bounds(day, tz)
    hours = []
    cursor = start
    while cursor < end:  # 23 or 25 columns on the days clocks change
        hours.append(cursor)
        cursor += timedelta(hours=1)
    orders = list(db.session.scalars(
        select(Order).where(Order.patient_id == patient.id, Order.start_at < end,
                            or_(Order.stopped_at.is_(None), Order.stopped_at >= start))
        .order_by(Order.kind, Order.start_at, Order.id)))
    rows = {o.id: SheetRow(order=o, cells=[[] for _ in hours]) for o in orders}
    grace = timedelta(minutes=settings.due_grace_minutes)
    done_by = aliased(User)
    for task, who in db.session.execute(
            select(Task, done_by.name).outerjoin(done_by, Task.done_by_id == done_by.id)
            .where(Task.patient_id == patient.id, Task.due_at >= start, Task.due_at < end)
            .order_by(Task.due_at)):
        row = rows.get(task.order_id)
        if row is None:
            continue
        column = int((task.due_at - start).total_seconds() // 3600)
        row.cells[column].append(SheetTask(
            uid=task.uid, due_at=task.due_at,
            state=task_state(task.status, task.due_at, now, grace),
            value=task.value, note=task.note, done_at=task.done_at, done_by=who,
            skip_reason=task.skip_reason))
    notes = list(db.session.scalars(
        select(Note).where(Note.patient_id == patient.id).order_by(Note.at.desc()).limit(30)))
    current = int((now - start).total_seconds() // 3600) if start <= now < end else None
    return Sheet(patient=patient, day=day, hours=hours, rows=list(rows.values()), notes=notes,
                 now=now, current_hour=current)
