"""What flows react to, written down as `FlowEvent` rows: domain events in the transaction
that recorded them, overdue tasks and schedules by a scan every minute. Each row's key is
the fact's own (`patient_admitted:<patient uid>`), so a replay or a second scan is one row.
"""

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import JSON, String, bindparam, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.clock import as_utc, to_local
from ..core.models import UTCDateTime
from ..extensions import db
from ..patients.models import Patient
from ..treatments.models import TASK_OPEN, Order, Task
from .models import Flow, FlowEvent

# Domain event → trigger kind, and the event's datum naming what happened.
EVENT_TRIGGERS = {
    "patient.admitted": ("patient_admitted", "patient"),
    "order.created": ("order_created", "order"),
    "form.finalised": ("form_finalised", "form"),
    "anaesthesia.finalised": ("anaesthesia_finalised", "sheet"),
    "patient.discharged": ("patient_discharged", "patient"),
    "task.value_recorded": ("value_recorded", "task"),
}
EVENT_COLUMNS = ("key", "kind", "patient_id", "at", "data", "recorded_at")
# An overdue task older than this when a flow first looks is not news any more.
OVERDUE_LOOKBACK = timedelta(hours=24)


def insert_ignoring_duplicates(session, model, *, chosen=None):
    """An INSERT that skips rows whose unique key is taken (the same fact again); of the
    rows `chosen` selects (their columns in the order of FlowEvent's), when given."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model)
    if chosen is not None:
        statement = statement.from_select(EVENT_COLUMNS, chosen)
    return statement.on_conflict_do_nothing().execution_options(preserve_rowcount=True)


def _capture_statement(session):
    """INSERT one event … only while an enabled flow waits for its kind, its patient found
    by uid, a repeat of its key skipped: one statement run for the commit's events, so a
    sync batch costs the same few queries whatever its size, and a commit when no flow
    waits writes nothing."""
    chosen = select(
        bindparam("key", type_=String), bindparam("kind", type_=String),
        select(Patient.id).where(Patient.uid == bindparam("patient_uid"))
        .scalar_subquery(),
        bindparam("at", type_=UTCDateTime()), bindparam("data", type_=JSON),
        bindparam("recorded_at", type_=UTCDateTime()),
    ).where(exists().where(Flow.enabled, Flow.trigger_kind == bindparam("kind")))
    return insert_ignoring_duplicates(session, FlowEvent, chosen=chosen)


def events_capture(session, events) -> bool:
    """Write a FlowEvent for each domain event an enabled flow waits for, in the committing
    transaction (called just before the commit); whether any was written."""
    now = clock.utcnow()
    rows = []
    for evt in events:
        if evt.name not in EVENT_TRIGGERS:
            continue
        kind, entity = EVENT_TRIGGERS[evt.name]
        data = {key: str(value) for key, value in evt.data.items()
                if key not in ("patient", "at") and value is not None}
        at = evt.data.get("at")
        rows.append({"key": f"{kind}:{evt.data[entity]}", "kind": kind,
                     "patient_uid": evt.data["patient"],
                     "at": as_utc(at) if isinstance(at, datetime) else now,
                     "data": data, "recorded_at": now})
    if not rows:
        return False
    return session.connection().execute(_capture_statement(session), rows).rowcount > 0


def overdue_capture(*, now: datetime | None = None) -> int:
    """Write an event for each open task overdue by the minutes an enabled flow waits for
    (once per task and minutes: one already written is left as it is); how many were
    noted. The caller commits."""
    now = now or clock.utcnow()
    minutes = set()
    for flow in db.session.scalars(select(Flow).where(
            Flow.enabled, Flow.trigger_kind == "task_overdue")):
        minutes.add(int(flow.current_version.definition["trigger"]["minutes"]))
    rows = []
    for wait in sorted(minutes):
        latest = now - timedelta(minutes=wait)
        found = db.session.execute(
            select(Task.uid, Task.due_at, Task.patient_id, Order.uid, Order.name, Order.kind)
            .join(Order, Task.order_id == Order.id).join(Patient, Task.patient_id == Patient.id)
            .where(Task.status == TASK_OPEN, Task.due_at <= latest,
                   Task.due_at > latest - OVERDUE_LOOKBACK, Patient.status == "admitted"))
        for task_uid, due_at, patient_id, order_uid, name, kind in found:
            rows.append({"key": f"task_overdue:{task_uid}:{wait}", "kind": "task_overdue",
                         "patient_id": patient_id, "at": due_at + timedelta(minutes=wait),
                         "data": {"task": task_uid, "order": order_uid, "order_name": name,
                                  "order_kind": kind, "due_at": due_at.isoformat(),
                                  "minutes": str(wait)},
                         "recorded_at": now})
    if rows:
        db.session.execute(insert_ignoring_duplicates(db.session, FlowEvent), rows)
    return len(rows)


def schedule_occurrences(trigger: dict, *, after: datetime, until: datetime, tz
                         ) -> list[datetime]:
    """The times (UTC) a schedule fires in (after, until], in the clinic's local time:
    daily, on chosen weekdays, or every N days counted from 1 January 2000."""
    hour, minute = (int(part) for part in trigger["time"].split(":"))
    day = to_local(after, tz).date()
    last = to_local(until, tz).date()
    out = []
    while day <= last:
        if _schedule_day(trigger, day):
            local = datetime.combine(day, time(hour, minute), tzinfo=tz)
            # A wall time a DST change skips is read before the change: it lands after the
            # gap (02:30 on a spring-forward night fires at 03:30 local).
            at = local.astimezone(UTC)
            if after < at <= until:
                out.append(at)
        day += timedelta(days=1)
    return out


def _schedule_day(trigger: dict, day) -> bool:
    every = trigger.get("every", "daily")
    if every == "weekly":
        return day.weekday() in (trigger.get("weekdays") or [])
    if every == "days":
        return (day.toordinal() - 730120) % max(1, int(trigger.get("days") or 1)) == 0
    return True


def schedule_capture(*, now: datetime | None = None) -> int:
    """Write an event for the latest occurrence each enabled schedule reached since it was
    last looked at (one, not a backlog: a server down for three days runs a daily flow
    once when it comes back); how many. The caller commits."""
    now = now or clock.utcnow()
    tz = settings_zone()
    rows = []
    for flow in db.session.scalars(select(Flow).where(
            Flow.enabled, Flow.trigger_kind == "schedule")):
        since = flow.schedule_checked_at or flow.current_version.published_at
        times = schedule_occurrences(flow.current_version.definition["trigger"],
                                     after=since, until=now, tz=tz)
        flow.schedule_checked_at = now
        if times:
            at = times[-1]
            rows.append({"key": f"schedule:{flow.uid}:{at.isoformat()}", "kind": "schedule",
                         "patient_id": None, "at": at, "data": {"flow": flow.uid},
                         "recorded_at": now})
    if rows:
        db.session.execute(insert_ignoring_duplicates(db.session, FlowEvent), rows)
    return len(rows)
