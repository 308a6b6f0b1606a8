"""The one registry of ops: name → argument schema → the same service the views call."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ..anaesthesia.models import AnaesthesiaSheet
from ..anaesthesia.selectors import anaesthesia_sheet_by_uid
from ..anaesthesia.services import anaesthesia_finalise, anaesthesia_record, anaesthesia_start
from ..billing.services import shift_end
from ..core.errors import DomainError, NotFound
from ..core.validate import INT_MAX, int_optional, timestamp
from ..discharge.services import patient_discharge
from ..extensions import db
from ..forms.models import PatientForm
from ..forms.selectors import form_template_by_uid, patient_form_by_uid
from ..forms.services import form_fill, form_finalise, form_start
from ..patients.models import Patient
from ..patients.services import PATIENT_FIELDS, patient_create
from ..treatments.models import Order, Task
from ..treatments.services import (
    ORDER_FIELDS,
    note_add,
    order_create,
    order_give_prn,
    order_stop,
    task_complete,
    task_on_demand,
    task_skip,
)
from .rows import FINDERS, BatchRows

# Refusals that describe a state another device got to first: recorded as a conflict
# for review (nothing applied twice), not rejected as impossible.
CONFLICT_CODES = {"already_stopped", "already_discharged", "already_done", "task_cancelled",
                  "not_admitted", "already_finalised", "discharge_blocked", "after_conflict"}
# The op that creates what a later op names by this argument: when that op was a conflict,
# the later one is a conflict too (`after_conflict`), not a mistake (`rejected`).
CREATED_BY = {"patient": ("patient.create", "a patient"), "order": ("order.create", "an order"),
              "sheet": ("anaesthesia.start", "an anaesthesia sheet"),
              "form": ("form.start", "a form")}


@dataclass
class OpContext:
    """Who acted, on which device, and when (device time corrected by the clock skew)."""

    user: object
    device: object
    at: datetime
    now: datetime
    patient: str | None = None  # the uid of the patient the op touched, once applied
    skew: timedelta = timedelta()  # server time minus the device's: for times in args
    # The batch's rows by uid (the one-flush path); None: ask the database every time.
    rows: BatchRows | None = None

    def find(self, model: type, uid: str):
        """The patient, order or task with this uid, or NotFound."""
        if self.rows is not None:
            return self.rows.get(model, uid)
        return FINDERS[model](uid)


@dataclass(frozen=True)
class OpSpec:
    """How to read an op's args and which service applies it."""

    name: str
    apply: Callable[[dict, OpContext], dict]
    patient_of: Callable[[dict], str | None]


def arg_uid(args: dict, key: str, *, required: bool = True) -> str | None:
    """A UUID argument as canonical text, or DomainError naming the argument."""
    value = args.get(key)
    if value is None and not required:
        return None
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) and len(value) <= 40 else \
            _bad_uid(key)
    except ValueError:
        return _bad_uid(key)


def _bad_uid(key: str):
    raise DomainError("bad_args", f"“{key}” must be a uid (UUID text).", field=key)


def arg_text(args: dict, key: str) -> str | None:
    """An optional text argument (length is checked by the service)."""
    value = args.get(key)
    if value is None or isinstance(value, str):
        return value
    raise DomainError("bad_args", f"“{key}” must be text.", field=key)


def arg_time(args: dict, key: str, *, required: bool = False) -> datetime | None:
    """An ISO-8601 timestamp argument (with Z or an offset) as aware UTC, within the
    calendar core.validate.timestamp allows; DomainError naming the argument otherwise
    (`bad_args` when it is not a timestamp, as ever; `out_of_range` when it is one too far
    off)."""
    try:
        return timestamp(args.get(key), key, f"“{key}”", required=required)
    except DomainError as exc:
        if exc.code in ("bad_time", "required"):
            raise DomainError("bad_args", exc.message, field=key) from None
        raise


def _scalar(args: dict, key: str):
    value = args.get(key)
    if value is None or isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    raise DomainError("bad_args", f"“{key}” must be a number or text.", field=key)


def _fields(args: dict, names: tuple[str, ...]) -> dict:
    out = {}
    for name in names:
        if name in args:
            value = args[name]
            if isinstance(value, dict):
                raise DomainError("bad_args", f"“{name}” has the wrong type.", field=name)
            out[name] = value
    return out


def _patient_create(args: dict, ctx: OpContext) -> dict:
    uid = arg_uid(args, "patient")
    data = _fields(args, PATIENT_FIELDS)
    if "billable" in args:
        raise DomainError("bad_args", "Patients are not billable.", field="billable")
    patient = patient_create(user=ctx.user, data=data, origin="pims" if data.get("pims_id")
                             else "direct", uid=uid, device=ctx.device, at=ctx.at,
                             clinical_fact=True)
    ctx.patient = patient.uid
    return {"patient": patient.uid, "unallocated": patient.unallocated}


def _order_create(args: dict, ctx: OpContext) -> dict:
    uid = arg_uid(args, "order")
    patient = ctx.find(Patient, arg_uid(args, "patient"))
    data = _fields(args, ORDER_FIELDS)
    billable = args.get("billable")
    if billable is not None:
        if not isinstance(billable, dict):
            raise DomainError("bad_args", "“billable” must be {code, price}.", field="billable")
        data["billable_code"], data["price"] = billable.get("code"), billable.get("price")
    arg_time(args, "start", required=True)
    order = order_create(user=ctx.user, patient=patient, data=data, uid=uid, device=ctx.device,
                         now=ctx.now, at=ctx.at)
    ctx.patient = patient.uid
    return {"order": order.uid, "tasks": order.tasks_made}


def _order_stop(args: dict, ctx: OpContext) -> dict:
    order = ctx.find(Order, arg_uid(args, "order"))
    order_stop(order=order, user=ctx.user, reason=arg_text(args, "reason"), device=ctx.device,
               at=ctx.at)
    ctx.patient = order.patient.uid
    return {"order": order.uid}


def _task_for(args: dict, ctx: OpContext, *, dose: bool = False) -> Task | None:
    """The task named; one a tablet computed beyond the server's horizon is made first.
    With `dose`, None when it names no task the server has but a PRN order's dose (the
    tablet's "Give now" numbers the dose's task itself): `order_give_prn` makes it."""
    uid = arg_uid(args, "task")
    try:
        return ctx.find(Task, uid)
    except NotFound:
        order_uid, due_at = arg_uid(args, "order", required=False), arg_time(args, "due_at")
        if order_uid is None or due_at is None:
            raise
    order = ctx.find(Order, order_uid)
    if order.prn and dose:
        return None
    return task_on_demand(order=order, due_at=due_at, uid=uid, now=ctx.now)


def _completed(task: Task, completion, ctx: OpContext) -> dict:
    ctx.patient = task.order.patient.uid
    result = {"task": task.uid}
    if completion.conflict:
        result["conflict"] = completion.conflict
    return result


def _task_complete(args: dict, ctx: OpContext) -> dict:
    task = _task_for(args, ctx, dose=True)
    if task is None:
        return _order_give(args, ctx)
    completion = task_complete(task=task, user=ctx.user, device=ctx.device, at=ctx.at,
                               value=_scalar(args, "value"), note=arg_text(args, "note"),
                               now=ctx.now)
    return _completed(task, completion, ctx)


def _order_give(args: dict, ctx: OpContext) -> dict:
    order = ctx.find(Order, arg_uid(args, "order"))
    completion = order_give_prn(order=order, user=ctx.user, device=ctx.device, at=ctx.at,
                                value=_scalar(args, "value"), note=arg_text(args, "note"),
                                now=ctx.now, uid=arg_uid(args, "task", required=False),
                                named_at=arg_time(args, "due_at"))
    return _completed(completion.task, completion, ctx)


def _task_skip(args: dict, ctx: OpContext) -> dict:
    task = _task_for(args, ctx)
    task_skip(task=task, user=ctx.user, reason=arg_text(args, "reason"), device=ctx.device,
              at=ctx.at)
    ctx.patient = task.order.patient.uid
    return {"task": task.uid}


def _note_add(args: dict, ctx: OpContext) -> dict:
    uid = arg_uid(args, "note")
    patient = ctx.find(Patient, arg_uid(args, "patient"))
    note = note_add(patient=patient, user=ctx.user, text=arg_text(args, "text"), uid=uid,
                    device=ctx.device, at=ctx.at)
    ctx.patient = patient.uid
    return {"note": note.uid}


def _patient_discharge(args: dict, ctx: OpContext) -> dict:
    patient = ctx.find(Patient, arg_uid(args, "patient"))
    patient_discharge(patient=patient, user=ctx.user, device=ctx.device, at=ctx.at,
                      override_reason=arg_text(args, "override_reason"))
    ctx.patient = patient.uid
    return {"patient": patient.uid}


def _patient_arg(args: dict) -> str | None:
    value = args.get("patient")
    return value if isinstance(value, str) and len(value) <= 40 else None


def _task_patient(args: dict) -> str | None:
    value = args.get("task")
    if not isinstance(value, str) or len(value) > 40:
        return None
    row = db.session.execute(select(Task.patient_id).where(Task.uid == value)).first()
    if row is None:
        return None
    return db.session.scalar(select(Patient.uid).where(Patient.id == row[0]))


def _order_patient(args: dict) -> str | None:
    value = args.get("order")
    if not isinstance(value, str) or len(value) > 40:
        return None
    return db.session.scalar(select(Patient.uid).join(Order, Order.patient_id == Patient.id)
                             .where(Order.uid == value))


def _anaesthesia_start(args: dict, ctx: OpContext) -> dict:
    uid = arg_uid(args, "sheet")
    patient = ctx.find(Patient, arg_uid(args, "patient"))
    header = {k: args[k] for k in ("procedure", "asa", "emergency", "team", "equipment")
              if k in args}
    sheet = anaesthesia_start(patient=patient, user=ctx.user, uid=uid, device=ctx.device,
                              at=ctx.at, header=header or None)
    ctx.patient = patient.uid
    result = {"sheet": uid}
    if sheet.uid != uid:  # another tablet started this patient's sheet first: joined
        result["joined"] = sheet.uid
    return result


def _anaesthesia_record(args: dict, ctx: OpContext) -> dict:
    uid = arg_uid(args, "entry")
    sheet = anaesthesia_sheet_by_uid(arg_uid(args, "sheet"))
    confirmed = args.get("confirmed") or []
    if not isinstance(confirmed, list) or not all(isinstance(c, str) for c in confirmed):
        raise DomainError("bad_args", "“confirmed” must be a list of value names.",
                          field="confirmed")
    at = arg_time(args, "at")  # when it happened, by the device's clock: corrected too
    try:
        at = min(at + ctx.skew, ctx.now) if at is not None else ctx.at
    except OverflowError:
        raise DomainError("bad_args", "“at” is too far from the device's clock.",
                          field="at") from None
    entry = anaesthesia_record(sheet=sheet, user=ctx.user, kind=arg_text(args, "kind"),
                               data=args.get("data"), uid=uid, at=at,
                               device=ctx.device, confirmed=confirmed, now=ctx.now)
    ctx.patient = sheet.patient.uid
    result = {"entry": uid, "sheet": entry.sheet.uid}
    if entry.addendum:
        result["addendum"] = True
    return result


def _anaesthesia_finalise(args: dict, ctx: OpContext) -> dict:
    sheet = anaesthesia_finalise(sheet=anaesthesia_sheet_by_uid(arg_uid(args, "sheet")),
                                 user=ctx.user, device=ctx.device, at=ctx.at)
    ctx.patient = sheet.patient.uid
    return {"sheet": sheet.uid}


def _sheet_patient(args: dict) -> str | None:
    value = args.get("sheet")
    if not isinstance(value, str) or len(value) > 40:
        return None
    return db.session.scalar(select(Patient.uid).join(
        AnaesthesiaSheet, AnaesthesiaSheet.patient_id == Patient.id).where(
        AnaesthesiaSheet.uid == value))


def _form_start(args: dict, ctx: OpContext) -> dict:
    uid = arg_uid(args, "form")
    patient = ctx.find(Patient, arg_uid(args, "patient"))
    template = form_template_by_uid(arg_uid(args, "template"))
    version = int_optional(args.get("version"), "version", "“version”", 1, INT_MAX, text=False)
    form = form_start(patient=patient, template=template, user=ctx.user, uid=uid,
                      version=version, device=ctx.device, at=ctx.at)
    ctx.patient = patient.uid
    return {"form": form.uid, "version": form.version.number}


def _form_fill(args: dict, ctx: OpContext) -> dict:
    form = patient_form_by_uid(arg_uid(args, "form"))
    entries = form_fill(form=form, user=ctx.user, values=args.get("values"),
                        fill=arg_uid(args, "fill", required=False), device=ctx.device,
                        at=ctx.at, now=ctx.now)
    ctx.patient = form.patient.uid
    return {"form": form.uid, "entries": [e.uid for e in entries]}


def _form_finalise(args: dict, ctx: OpContext) -> dict:
    form = form_finalise(form=patient_form_by_uid(arg_uid(args, "form")), user=ctx.user,
                         device=ctx.device, at=ctx.at)
    ctx.patient = form.patient.uid
    return {"form": form.uid}


def _form_patient(args: dict) -> str | None:
    value = args.get("form")
    if not isinstance(value, str) or len(value) > 40:
        return None
    return db.session.scalar(select(Patient.uid).join(
        PatientForm, PatientForm.patient_id == Patient.id).where(PatientForm.uid == value))


def _shift_end(args: dict, ctx: OpContext) -> dict:
    uid = arg_uid(args, "mark")
    at = arg_time(args, "at")  # when it was marked, by the device's clock: corrected too
    try:
        at = min(at + ctx.skew, ctx.now) if at is not None else ctx.at
    except OverflowError:
        raise DomainError("bad_args", "“at” is too far from the device's clock.",
                          field="at") from None
    mark = shift_end(user=ctx.user, at=at, uid=uid, device=ctx.device,
                     note=arg_text(args, "note"), now=ctx.now)
    return {"mark": mark.uid}


def _no_patient(args: dict) -> None:
    return None


REGISTRY: dict[str, OpSpec] = {spec.name: spec for spec in (
    OpSpec("patient.create", _patient_create, _patient_arg),
    OpSpec("order.create", _order_create, _patient_arg),
    OpSpec("order.stop", _order_stop, _order_patient),
    OpSpec("order.give", _order_give, _order_patient),
    OpSpec("task.complete", _task_complete, _task_patient),
    OpSpec("task.skip", _task_skip, _task_patient),
    OpSpec("note.add", _note_add, _patient_arg),
    OpSpec("patient.discharge", _patient_discharge, _patient_arg),
    OpSpec("anaesthesia.start", _anaesthesia_start, _patient_arg),
    OpSpec("anaesthesia.record", _anaesthesia_record, _sheet_patient),
    OpSpec("anaesthesia.finalise", _anaesthesia_finalise, _sheet_patient),
    OpSpec("form.start", _form_start, _patient_arg),
    OpSpec("form.fill", _form_fill, _form_patient),
    OpSpec("form.finalise", _form_finalise, _form_patient),
    OpSpec("shift.end", _shift_end, _no_patient),
)}
