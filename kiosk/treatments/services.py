"""Writes for treatment: orders and their tasks, completions, skips, stops and notes.

Every caller — the sheet, the sync endpoint, the command line — goes through these.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_COMPLETE_TASK, LEVEL_ORDERS, permission_check
from ..core.clock import as_utc
from ..core.errors import DomainError
from ..core.events import event_record, fact_record
from ..core.models import new_uid, uid_check_free
from ..core.validate import (
    choice,
    decimal_optional,
    int_optional,
    text_optional,
    text_required,
    times_list,
    timestamp,
)
from ..extensions import db
from ..patients.models import Patient
from .models import (
    ORDER_KINDS,
    ROUTES,
    TASK_CANCELLED,
    TASK_DONE,
    TASK_OPEN,
    TASK_SKIPPED,
    VALUE_TYPES,
    Note,
    Order,
    Task,
    TaskCompletion,
)
from .schedule import (
    HORIZON,
    SHOWN_AHEAD,
    due_times,
    is_due_time,
    order_window_check,
    task_uid,
)

ERR_NOT_ADMITTED = "{name} is not admitted; orders can only be added to admitted patients."
ERR_END_BEFORE_START = "The end must be after the start."
ERR_TWO_SCHEDULES = "Choose one schedule: every N hours, set times, or as needed (PRN)."
ERR_ALREADY_STOPPED = "This order was already stopped."
ERR_ALREADY_DONE = "This task was already done by {who} at {at}."
ERR_TASK_CLOSED = "This task was cancelled when its order was stopped."
ERR_FUTURE = "The time given is in the future."
ERR_BEFORE_ORDER = "The time given is before this order started."
ERR_VALUE_REQUIRED = "Enter the value measured."
ERR_NOT_PRN = "Only as-needed (PRN) orders are given on demand; complete its scheduled tasks."
ERR_NOT_DOSE_UID = "“task” is not the uid of that order's dose given at “due_at”."
FUTURE_TOLERANCE = timedelta(minutes=5)
ERR_NOT_DUE = "This order has no task due at that time."
ERR_DUE_AHEAD = "That task is due more than 14 days ahead."
DOSE_MAX = Decimal("10000000")
ML_MAX = Decimal("1000000")

# Conflicts recorded on a completion: clinical facts are never refused, only flagged.
CONFLICT_ALREADY_DONE = "already_done"
CONFLICT_ORDER_STOPPED = "order_stopped"
CONFLICT_DISCHARGED = "patient_discharged"


# What an order is given by, the one list (the order form, the order.create op).
ORDER_FIELDS = ("name", "kind", "dose", "units", "concentration", "volume_ml", "route",
                "rate_ml_h", "additives", "instructions", "value_type", "value_units",
                "every_hours", "times", "prn", "start", "end", "billable_code", "price")


def order_fields_clean(data: dict, *, now: datetime) -> dict:
    """Validate an order from a form or an op; return clean values (times in UTC)."""
    out = {
        "name": text_required(data.get("name"), "name", "Name", 120),
        "kind": choice(data.get("kind"), "kind", "Kind", ORDER_KINDS),
        # The maxima are what the columns hold (PostgreSQL refuses more, SQLite would not).
        "dose": decimal_optional(data.get("dose"), "dose", "Dose", maximum=DOSE_MAX),
        "units": text_optional(data.get("units"), "units", "Units", 20),
        "concentration": text_optional(data.get("concentration"), "concentration",
                                       "Concentration", 40),
        "volume_ml": decimal_optional(data.get("volume_ml"), "volume_ml", "Volume (mL)",
                                      maximum=ML_MAX),
        "rate_ml_h": decimal_optional(data.get("rate_ml_h"), "rate_ml_h", "Rate (mL/h)",
                                      maximum=ML_MAX),
        "additives": text_optional(data.get("additives"), "additives", "Additives", 200),
        "instructions": text_optional(data.get("instructions"), "instructions",
                                      "Instructions", 300),
        "value_units": text_optional(data.get("value_units"), "value_units", "Value units", 20),
        "every_hours": int_optional(data.get("every_hours"), "every_hours", "Every (hours)",
                                    1, 168),
        "times": times_list(data.get("times")),
        "prn": _flag(data.get("prn"), "prn"),
        "billable_code": text_optional(data.get("billable_code"), "billable_code",
                                       "Billing code", 40),
        "price": decimal_optional(data.get("price"), "price", "Price",
                                  maximum=Decimal("1000000")),
    }
    route = text_optional(data.get("route"), "route", "Route", 20)
    out["route"] = choice(route, "route", "Route", ROUTES) if route else None
    default_value_type = "number" if out["kind"] == "observation" else "none"
    out["value_type"] = choice(data.get("value_type") or default_value_type, "value_type",
                               "Value", VALUE_TYPES)
    if sum(bool(x) for x in (out["every_hours"], out["times"], out["prn"])) > 1:
        raise DomainError("two_schedules", ERR_TWO_SCHEDULES, field="every_hours")
    tz = settings_zone()
    out["start_at"] = timestamp(data.get("start"), "start", "Start", tz=tz) or now
    out["end_at"] = timestamp(data.get("end"), "end", "End", tz=tz)
    if out["end_at"] is not None and out["end_at"] <= out["start_at"]:
        raise DomainError("end_before_start", ERR_END_BEFORE_START, field="end")
    order_window_check(out["start_at"], out["end_at"], now=now)
    return out


def _flag(value, field: str) -> bool:
    if value in (None, "", False, "0", "false", "off"):
        return False
    if value in (True, "1", "true", "on", "yes"):
        return True
    raise DomainError("bad_type", "Must be true or false.", field=field)


def order_create(*, user, patient: Patient, data: dict, uid: str | None = None, device=None,
                 now: datetime | None = None, at: datetime | None = None) -> Order:
    """Add an order to an admitted patient and generate its first two days of tasks
    (how many: `order.tasks_made`, on the returned order only, not stored). `at` is when
    it was ordered (an offline tablet's order syncs later), `now` by default."""
    permission_check(user, LEVEL_ORDERS, "create orders")
    if patient.status != "admitted":
        raise DomainError("not_admitted", ERR_NOT_ADMITTED.format(name=patient.name))
    now = now or clock.utcnow()
    fields = order_fields_clean(data, now=now)
    if uid is not None:
        uid_check_free(Order, uid, field="order", what="order")
    order = Order(uid=uid or new_uid(), patient=patient, created_by_id=user.id,
                  status="active", **fields)
    db.session.add(order)
    order.tasks_made = tasks_generate(order=order, until=max(now, order.start_at) + HORIZON)
    audit_record(action="order.create", entity="order", entity_uid=order.uid, user=user,
                 device=device, detail={"patient": patient.uid, "name": order.name})
    event_record(db.session, "order.changed", patient=patient.uid, order=order.uid)
    event_record(db.session, "order.created", patient=patient.uid, order=order.uid,
                 at=as_utc(at) if at else now)
    return order


def tasks_generate(*, order: Order, until: datetime) -> int:
    """Create the order's tasks due before `until` that do not exist yet; return how many."""
    if not order.is_active:
        return 0
    dues = due_times(start=order.start_at, end=order.end_at, every_hours=order.every_hours,
                     times=order.times or [], prn=order.prn, after=order.generated_until,
                     until=until, tz=settings_zone())
    # An order made in this unit of work has no ids yet: its tasks point at it and at its
    # patient, and one flush writes them all in order.
    owner = {"patient_id": order.patient_id} if order.patient_id is not None \
        else {"patient": order.patient}
    for due in dues:
        db.session.add(Task(uid=task_uid(order.uid, due), order=order, due_at=due,
                            status=TASK_OPEN, **owner))
    if dues or order.generated_until is None or until > order.generated_until:
        order.generated_until = max(until, order.generated_until or until)
    return len(dues)


def task_on_demand(*, order: Order, due_at: datetime, uid: str,
                   now: datetime | None = None) -> Task:
    """The order's task due at `due_at`, made now if the server has not generated it yet (a
    tablet computes due times and task uids itself, SYNC.md). Refused, naming `due_at`,
    unless it is one of the order's due times, at most SHOWN_AHEAD from now."""
    now = now or clock.utcnow()
    due_at = timestamp(due_at, "due_at", "Due time")
    if not is_due_time(start=order.start_at, end=order.end_at, every_hours=order.every_hours,
                       times=order.times or [], prn=order.prn, due=due_at, tz=settings_zone()):
        raise DomainError("not_due", ERR_NOT_DUE, field="due_at")
    if due_at > now + SHOWN_AHEAD:
        raise DomainError("out_of_range", ERR_DUE_AHEAD, field="due_at")
    if task_uid(order.uid, due_at) != uid:
        raise DomainError("bad_args", "“task” is not the uid of that order's task due then.",
                          field="task")
    task = Task(uid=uid, order=order, patient=order.patient, due_at=due_at, status=TASK_OPEN)
    db.session.add(task)
    return task


def tasks_generate_shown(*, patient: Patient, until: datetime,
                         now: datetime | None = None) -> int:
    """Make the patient's tasks due before `until` (the end of the day a sheet shows), so a
    day ahead of upkeep's two days shows its tasks; never further than SHOWN_AHEAD."""
    until = min(until, (now or clock.utcnow()) + SHOWN_AHEAD)
    orders = db.session.scalars(select(Order).where(
        Order.patient_id == patient.id, Order.status == "active", Order.prn.is_(False),
        (Order.generated_until.is_(None)) | (Order.generated_until < until)))
    return sum(tasks_generate(order=o, until=until) for o in orders)


def tasks_extend_all(*, now: datetime | None = None) -> int:
    """Roll every active order of admitted patients forward to two days ahead of `now`."""
    until = (now or clock.utcnow()) + HORIZON
    orders = db.session.scalars(
        select(Order).join(Patient).where(Order.status == "active", Patient.status == "admitted",
                                          Order.prn.is_(False)))
    return sum(tasks_generate(order=o, until=until) for o in orders
               if o.generated_until is None or o.generated_until < until)


def order_stop(*, order: Order, user, reason=None, device=None, at=None) -> Order:
    """Stop an order: its remaining open tasks are cancelled; done ones stay as they were."""
    permission_check(user, LEVEL_ORDERS, "stop orders")
    if not order.is_active:
        raise DomainError("already_stopped", ERR_ALREADY_STOPPED)
    order.status = "stopped"
    order.stopped_at = at or clock.utcnow()
    order.stopped_by_id = user.id
    order.stop_reason = text_optional(reason, "reason", "Reason", 200)
    if order.id is None:
        db.session.flush()  # made in this unit of work: the UPDATE below needs its id
    db.session.execute(update(Task).where(Task.order_id == order.id, Task.status == TASK_OPEN)
                       .values(status=TASK_CANCELLED))
    audit_record(action="order.stop", entity="order", entity_uid=order.uid, user=user,
                 device=device, detail={"reason": order.stop_reason})
    event_record(db.session, "order.changed", patient=order.patient.uid, order=order.uid)
    return order


def task_complete(*, task: Task, user, device=None, at: datetime | None = None, value=None,
                  note=None, now: datetime | None = None) -> TaskCompletion:
    """Record that a task was done (who, when, which device, a value, a note).

    A clinical fact is never refused: a second completion, or one after the order was
    stopped or the patient discharged, is stored with a `conflict` for review.
    """
    permission_check(user, LEVEL_COMPLETE_TASK, "complete tasks")
    now = now or clock.utcnow()
    at = as_utc(at) if at else now
    order = task.order
    if at > now + FUTURE_TOLERANCE:
        raise DomainError("bad_time", ERR_FUTURE, field="at")
    if at + timedelta(hours=1) < order.start_at:  # (start − 1 h overflows for year-1 orders)
        raise DomainError("outside_order", ERR_BEFORE_ORDER, field="at")
    value = _task_value(order, value)
    note = text_optional(note, "note", "Note", 500)
    conflict = _completion_conflict(task)
    completion = TaskCompletion(task=task, user_id=user.id,
                                device_id=device.id if device else None, done_at=at,
                                recorded_at=now, value=value, note=note,
                                duplicate=conflict == CONFLICT_ALREADY_DONE, conflict=conflict)
    db.session.add(completion)
    if conflict != CONFLICT_ALREADY_DONE:
        task.status, task.done_at, task.done_by_id = TASK_DONE, at, user.id
        task.done_device_id = device.id if device else None
        task.value, task.note = value, note
    if conflict is None:  # a conflict charges nothing (billing listens for this fact)
        fact_record("task.completed", task=task, completion=completion, user=user,
                    device=device, now=now)
        if value is not None:
            event_record(db.session, "task.value_recorded", patient=order.patient.uid,
                         task=task.uid, value=value, at=at)
    audit_record(action="task.complete", entity="task", entity_uid=task.uid, user=user,
                 device=device, detail={"value": value, "conflict": conflict})
    event_record(db.session, "task.changed", patient=order.patient.uid, task=task.uid)
    return completion


def order_give_prn(*, order: Order, user, device=None, at: datetime | None = None, value=None,
                   note=None, now: datetime | None = None, uid: str | None = None,
                   named_at: datetime | None = None) -> TaskCompletion:
    """Record a dose of an as-needed (PRN) order: a task due when given, completed at once.

    The one way a dose is given: the sheet's "Give now", the `order.give` op, and a tablet's
    `task.complete` of a dose it numbered itself. `uid` is the task uid the tablet computed
    (SYNC.md) from `named_at`, the time by its own clock; it must be that order's task uid
    then. A scheduled order is refused (`not_prn`, naming `order`) before anything is made.
    """
    if not order.prn:
        raise DomainError("not_prn", ERR_NOT_PRN, field="order")
    now = now or clock.utcnow()
    at = as_utc(at) if at else now
    expected = task_uid(order.uid, as_utc(named_at) if named_at else at)
    if uid is not None and uid != expected:
        raise DomainError("bad_args", ERR_NOT_DOSE_UID, field="task")
    task = db.session.scalar(select(Task).where(Task.uid == expected))
    if task is None:
        # Linked through relationships: an order made earlier in the same sync batch has
        # no id until the batch's one flush.
        task = Task(uid=expected, order=order, patient=order.patient, due_at=at,
                    status=TASK_OPEN)
        db.session.add(task)
    return task_complete(task=task, user=user, device=device, at=at, value=value, note=note,
                         now=now)


def _completion_conflict(task: Task) -> str | None:
    if task.status == TASK_DONE:
        return CONFLICT_ALREADY_DONE
    if task.status == TASK_CANCELLED or not task.order.is_active:
        return CONFLICT_ORDER_STOPPED
    if task.order.patient.status != "admitted":
        return CONFLICT_DISCHARGED
    return None


def _task_value(order: Order, value) -> str | None:
    if order.value_type == "number":
        number = decimal_optional(value, "value", "Value", minimum=None)
        if number is None:
            raise DomainError("required", ERR_VALUE_REQUIRED, field="value")
        return f"{number.normalize():f}"
    return text_optional(value if value is None or isinstance(value, str) else str(value),
                         "value", "Value", 60)


def task_skip(*, task: Task, user, reason, device=None, at=None) -> Task:
    """Skip a task with a reason; a done or cancelled task cannot be skipped."""
    permission_check(user, LEVEL_COMPLETE_TASK, "skip tasks")
    reason = text_required(reason, "reason", "Reason", 200)
    if task.status == TASK_DONE:
        who = task.done_by.name if task.done_by else "someone"
        raise DomainError("already_done", ERR_ALREADY_DONE.format(
            who=who, at=task.done_at.astimezone(settings_zone()).strftime("%H:%M")))
    if task.status == TASK_CANCELLED:
        raise DomainError("task_cancelled", ERR_TASK_CLOSED)
    task.status = TASK_SKIPPED
    task.skip_reason = reason
    task.done_at = as_utc(at) if at else clock.utcnow()
    task.done_by_id = user.id
    task.done_device_id = device.id if device else None
    audit_record(action="task.skip", entity="task", entity_uid=task.uid, user=user,
                 device=device, detail={"reason": reason})
    event_record(db.session, "task.changed", patient=task.order.patient.uid, task=task.uid)
    return task


def note_add(*, patient: Patient, user, text, uid: str | None = None, device=None,
             at=None) -> Note:
    """Append a note to a patient's record."""
    permission_check(user, LEVEL_COMPLETE_TASK, "add notes")
    text = text_required(text, "text", "Note", 5000)
    if uid is not None:
        uid_check_free(Note, uid, field="note", what="note")
    note = Note(uid=uid or new_uid(), patient=patient, user_id=user.id,
                device_id=device.id if device else None, text=text,
                at=as_utc(at) if at else clock.utcnow())
    db.session.add(note)
    audit_record(action="note.add", entity="note", entity_uid=note.uid, user=user, device=device,
                 detail={"patient": patient.uid})
    event_record(db.session, "note.added", patient=patient.uid)
    return note

