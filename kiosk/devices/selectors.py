"""Reads of devices: lists, what each tablet carries, and the sync dashboard."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..clinic.models import Ward
from ..core import clock
from ..core.errors import NotFound
from ..extensions import db
from ..patients.models import Patient
from ..staff.models import User
from ..treatments.models import TASK_DONE, Task, TaskCompletion
from .models import Device, DeviceEvent, DevicePatient, SyncOp

SKEW_LIMIT_MS = 5 * 60 * 1000


def device_by_id(device_id: int) -> Device:
    """The device with this id, or NotFound."""
    device = db.session.get(Device, device_id)
    if device is None:
        raise NotFound("There is no device with that id.")
    return device


def displays_list() -> list[Device]:
    """Wall displays, active ones first, by name."""
    return list(db.session.scalars(
        select(Device).where(Device.kind == "display")
        .order_by(Device.revoked_at.is_not(None), Device.name)))


def devices_list() -> list[Device]:
    """Every device: active ones first, tablets before displays, by colour and number."""
    return list(db.session.scalars(select(Device).order_by(
        Device.revoked_at.is_not(None), Device.kind.desc(), Device.colour, Device.number,
        Device.name)))


def _carries(device: Device, patient: Patient, picked: set[int]) -> bool:
    """The one rule: a tablet carries the admitted patients of its ward and those picked
    for it (`picked`: the ids of the patients picked for this device)."""
    return patient.status == "admitted" and (
        patient.id in picked or (device.ward_id is not None and patient.ward_id == device.ward_id))


def _admitted_patients() -> list[Patient]:
    """Admitted patients by ward, cage and name (the order lists of carried patients use)."""
    return list(db.session.scalars(select(Patient).where(Patient.status == "admitted")
                                   .outerjoin(Ward, Ward.id == Patient.ward_id)
                                   .order_by(Ward.name, Patient.cage, Patient.name)))


def _picks(*, device_ids=None, patient_ids=None) -> dict[int, set[int]]:
    """Patients picked by hand, as device id -> patient ids (one query)."""
    query = select(DevicePatient.device_id, DevicePatient.patient_id)
    if device_ids is not None:
        query = query.where(DevicePatient.device_id.in_(device_ids))
    if patient_ids is not None:
        query = query.where(DevicePatient.patient_id.in_(patient_ids))
    out: dict[int, set[int]] = {}
    for device_id, patient_id in db.session.execute(query):
        out.setdefault(device_id, set()).add(patient_id)
    return out


def carried_patients(device: Device) -> list[Patient] | None:
    """The admitted patients a tablet carries, by ward, cage and name; None when it has no
    assignment at all (it carries every one)."""
    picked = _picks(device_ids=[device.id]).get(device.id, set())
    if device.ward_id is None and not picked:
        return None
    return [p for p in _admitted_patients() if _carries(device, p, picked)]


def carriers_by_patient(patients: list[Patient]) -> dict[int, list[Device]]:
    """Which active tablets carry each of these patients (two queries whatever the count)."""
    if not patients:
        return {}
    tablets = list(db.session.scalars(select(Device).where(
        Device.revoked_at.is_(None), Device.kind == "tablet")
        .order_by(Device.colour, Device.number)))
    picks = _picks(patient_ids=[p.id for p in patients]) if tablets else {}
    return {p.id: [d for d in tablets if _carries(d, p, picks.get(d.id, set()))]
            for p in patients}


def device_card(device: Device) -> dict:
    """A device as the assignment page, its PDF and the label sheet show it."""
    return {"id": device.public_id, "device": device, "label": device.label,
            "name": device.name, "colour": device.colour, "number": device.number,
            "kind": device.kind, "ward": device.ward.name if device.ward else None,
            "board": device.board.name if device.board else None,
            "revoked": device.revoked_at is not None}


def device_cards() -> list[dict]:
    """Every active device's card (for the label sheet)."""
    return [device_card(d) for d in devices_list() if d.revoked_at is None]


def assignment_cards() -> list[dict]:
    """Every active device with what it carries, shaped for the assignment page and its
    PDF (three queries whatever the number of devices and patients)."""
    devices = [d for d in devices_list() if d.revoked_at is None]
    picks = _picks()
    admitted = _admitted_patients()
    cards = []
    for device in devices:
        picked = picks.get(device.id, set())
        assigned = device.kind == "tablet" and (device.ward_id is not None or bool(picked))
        carried = [p for p in admitted if _carries(device, p, picked)] if assigned else []
        cards.append({**device_card(device), "assigned": assigned, "patients": [
            {"uid": p.uid, "name": p.name, "species": p.species.capitalize(), "cage": p.cage,
             "ward": p.ward.name if p.ward else None, "picked": p.id in picked}
            for p in carried]})
    return cards


@dataclass
class DashboardRow:
    """One device on the sync dashboard: what it last said of its outbox, and when.

    Only the tablet itself can say its outbox is empty (its requests report what waits
    on it, SYNC.md's `outbox.pending`), and only for the moment it said so: a tablet that
    has not been heard from since may have recorded changes offline. So "all sent" needs a
    report of an empty outbox within `CONFIRM_WITHIN`; anything older is "not heard since".
    """

    device: Device
    conflicts: int
    gaps: int
    silent: bool
    waiting: bool
    skewed: bool

    @property
    def state(self) -> str:
        """'ok' (confirmed an empty outbox lately), 'waiting' (said it holds unsent
        changes), 'silent' (not heard from lately: nothing confirmed), 'display' (a wall
        display keeps no changes), 'unpaired' (no token yet) or 'revoked'."""
        if self.device.revoked_at is not None:
            return "revoked"
        if not self.device.is_paired:
            return "unpaired"
        if self.device.kind != "tablet":
            return "display"
        if self.waiting:
            return "waiting"
        if self.silent:
            return "silent"
        return "ok"

    @property
    def confirmed_at(self) -> datetime | None:
        """When the tablet last confirmed it holds nothing unsent (state 'ok' only)."""
        return self.device.last_seen_at if self.state == "ok" else None

    @property
    def counts(self) -> bool:
        """Whether the "has every device synced?" answer depends on this device."""
        return self.state in ("ok", "waiting", "silent")


def confirm_within() -> timedelta:
    """How recent a tablet's report of an empty outbox must be to count as "all sent"
    (by default two minutes: a tablet with a page open reports every minute)."""
    return timedelta(seconds=int(current_app.config.get("KIOSK_SYNC_CONFIRM_SECONDS", 120)))


def outbox_waiting(device: Device) -> bool:
    """Whether the device's own last report said it holds unsent changes."""
    return (device.outbox_pending or 0) > 0


def outbox_silent(device: Device, *, since: datetime) -> bool:
    """Whether a tablet has not been heard from since `since`: it may hold changes nobody
    knows of, so it never counts as synced. The one rule of "synced" (with outbox_waiting):
    the sync dashboard asks since a moment ago, the after-outage report since the outage
    ended."""
    seen = device.last_seen_at
    return device.kind == "tablet" and (seen is None or seen < since)


def dashboard_rows(*, now: datetime | None = None,
                   since: datetime | None = None) -> list[DashboardRow]:
    """Every device's sync state: waiting ops, silence, skew, gaps and unreviewed conflicts.
    A tablet is silent unless heard from since `since` (by default within confirm_within)."""
    now = now or clock.utcnow()
    since = since if since is not None else now - confirm_within()
    conflicts = dict(db.session.execute(
        select(SyncOp.device_id, func.count()).where(
            SyncOp.status.in_(("conflict", "rejected")), SyncOp.dismissed_at.is_(None))
        .group_by(SyncOp.device_id)).all())
    gaps = dict(db.session.execute(
        select(DeviceEvent.device_id, func.count()).where(DeviceEvent.kind == "gap")
        .group_by(DeviceEvent.device_id)).all())
    rows = []
    for device in devices_list():
        rows.append(DashboardRow(
            device=device, conflicts=conflicts.get(device.id, 0), gaps=gaps.get(device.id, 0),
            silent=outbox_silent(device, since=since), waiting=outbox_waiting(device),
            skewed=device.skew_ms is not None and abs(device.skew_ms) > SKEW_LIMIT_MS))
    order = {"waiting": 0, "silent": 1, "ok": 2, "display": 3, "unpaired": 4, "revoked": 5}
    rows.sort(key=lambda r: order[r.state])
    return rows


@dataclass
class DashboardSummary:
    """The answer at the top of the dashboard: synced only when every tablet said so."""

    devices: int
    waiting: list[DashboardRow]
    silent: list[DashboardRow]
    conflicts: int

    @property
    def all_synced(self) -> bool:
        """True when every paired tablet confirmed an empty outbox lately (and there is at
        least one: no tablet confirmed nothing)."""
        return self.devices > 0 and not self.waiting and not self.silent


def dashboard_summary(rows: list[DashboardRow]) -> DashboardSummary:
    """What the dashboard's verdict says of these rows."""
    counted = [r for r in rows if r.counts]
    return DashboardSummary(devices=len(counted),
                            waiting=[r for r in counted if r.state == "waiting"],
                            silent=[r for r in counted if r.state == "silent"],
                            conflicts=sum(r.conflicts for r in rows if r.state != "revoked"))


def device_problems(device: Device, *, limit: int = 50) -> list[SyncOp]:
    """A device's conflicts and rejected ops not yet dismissed, newest first."""
    return list(db.session.scalars(select(SyncOp).where(
        SyncOp.device_id == device.id, SyncOp.status.in_(("conflict", "rejected")),
        SyncOp.dismissed_at.is_(None)).order_by(SyncOp.seq.desc()).limit(limit)))


# ---- Reviewing a device's conflicts and refused changes -------------------------------

# What each op did, in the words of the review page.
OP_LABELS = {"task.complete": "Task done", "task.skip": "Task skipped",
             "order.create": "Order added", "order.stop": "Order stopped",
             "note.add": "Note added", "patient.create": "Patient created",
             "patient.discharge": "Discharge", "anaesthesia.start": "Anaesthesia sheet started",
             "anaesthesia.record": "Anaesthesia entry", "anaesthesia.finalise":
             "Anaesthesia sheet finalised", "form.start": "Form started",
             "form.fill": "Form filled", "form.finalise": "Form finalised"}
# What the tablet's op said, by argument, shown beside what the server holds.
TABLET_FIELDS = (("value", "Value"), ("note", "Note"), ("text", "Note"), ("reason", "Reason"),
                 ("name", "Name"), ("override_reason", "Override reason"))


@dataclass
class Side:
    """One side of a conflict: who, when, on which device, and what they recorded."""

    person: str | None = None
    at: datetime | None = None
    device: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)
    summary: str | None = None  # when the server's side is a state, not an entry


@dataclass
class ProblemCard:
    """A conflict or refused op as the review page shows it, with the answers it allows."""

    op: SyncOp
    what: str
    reason: str
    patient: Patient | None
    task: Task | None
    tablet: Side
    server: Side | None
    completion: TaskCompletion | None  # the tablet's completion kept as a duplicate

    @property
    def can_replace(self) -> bool:
        """The tablet's completion may stand instead of the server's."""
        return self.completion is not None and self.completion.duplicate and \
            self.task is not None and self.task.status == TASK_DONE

    @property
    def can_note(self) -> bool:
        """The tablet's entry may be added to the patient's notes."""
        return self.patient is not None and bool(self.tablet.fields)


def problem_cards(device: Device, *, limit: int = 50) -> list[ProblemCard]:
    """A device's conflicts and refused ops not yet reviewed, newest first, each with the
    patient, the task (order and due time), both sides and both people by name (a handful
    of queries whatever the count)."""
    return _cards(device_problems(device, limit=limit))


def problem_card(device: Device, op_id) -> ProblemCard:
    """One of the device's ops to review, or NotFound (unknown, or not this device's)."""
    record = db.session.get(SyncOp, op_id) if isinstance(op_id, int) else None
    if record is None or record.device_id != device.id or \
            record.status not in ("conflict", "rejected"):
        raise NotFound(ERR_NO_PROBLEM)
    return _cards([record])[0]


ERR_NO_PROBLEM = "There is no such conflict or refused change on this device."


def problem_cards_between(start: datetime, end: datetime, *,
                          limit: int = 200) -> list[ProblemCard]:
    """Every device's conflicts and refused ops not yet reviewed that were performed
    between `start` and `end` (an outage), oldest first, as the review page words them."""
    return _cards(list(db.session.scalars(select(SyncOp).where(
        SyncOp.status.in_(("conflict", "rejected")), SyncOp.dismissed_at.is_(None),
        SyncOp.corrected_at >= start, SyncOp.corrected_at <= end)
        .order_by(SyncOp.corrected_at, SyncOp.id).limit(limit))))


def _user_id(ref) -> int | None:
    if isinstance(ref, str) and ref.startswith("u_") and ref[2:].isdigit() and len(ref) < 20:
        return int(ref[2:])
    return None


def _task_uid(op: SyncOp) -> str | None:
    for source in (op.result or {}, op.args or {}):
        value = source.get("task") if isinstance(source, dict) else None
        if isinstance(value, str) and len(value) <= 40:
            return value
    return None


def _cards(ops: list[SyncOp]) -> list[ProblemCard]:
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(
        {_user_id(op.user_ref) for op in ops} - {None})))}
    patients = {p.uid: p for p in db.session.scalars(select(Patient).where(Patient.uid.in_(
        {op.patient_uid for op in ops if op.patient_uid})))}
    tasks = {t.uid: t for t in db.session.scalars(select(Task).where(Task.uid.in_(
        {_task_uid(op) for op in ops} - {None})).options(selectinload(Task.order),
                                                        selectinload(Task.done_by)))}
    completions: dict[int, list[TaskCompletion]] = {}
    for completion in db.session.scalars(select(TaskCompletion).where(
            TaskCompletion.task_id.in_([t.id for t in tasks.values()]))
            .order_by(TaskCompletion.id)):
        completions.setdefault(completion.task_id, []).append(completion)
    devices = {d.id: d for d in devices_list()}
    people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(
        ({t.done_by_id for t in tasks.values()}
         | {c.user_id for cs in completions.values() for c in cs}) - {None})))}
    people.update(users)
    return [_card(op, users, patients, tasks, completions, devices, people) for op in ops]


def _card(op, users, patients, tasks, completions, devices, people) -> ProblemCard:
    result = op.result or {}
    args = op.args if isinstance(op.args, dict) else {}
    person = users.get(_user_id(op.user_ref))
    task = tasks.get(_task_uid(op))
    device = devices.get(op.device_id)
    tablet = Side(person=person.name if person else "someone not on the staff list",
                  at=op.corrected_at, device=device.label if device else None,
                  fields=[(label, str(args[key])) for key, label in TABLET_FIELDS
                          if isinstance(args.get(key), str | int | float)
                          and not isinstance(args.get(key), bool) and str(args[key]).strip()])
    reason = (result.get("error") or {}).get("message") or result.get("message") or \
        str(result.get("conflict") or "").replace("_", " ")
    completion = None
    if task is not None and op.name == "task.complete" and op.status == "conflict":
        mine = [c for c in completions.get(task.id, []) if c.device_id == op.device_id
                and c.user_id == (person.id if person else None) and c.conflict]
        completion = next((c for c in mine if c.done_at == op.corrected_at), None) or \
            (mine[-1] if mine else None)
    return ProblemCard(op=op, what=OP_LABELS.get(op.name, op.name), reason=reason,
                       patient=patients.get(op.patient_uid), task=task, tablet=tablet,
                       server=_server_side(op, task, patients.get(op.patient_uid), devices,
                                           people),
                       completion=completion)


def _server_side(op, task, patient, devices, people) -> Side | None:
    """What the server holds that the tablet's op met: the task's standing completion (a
    task done first elsewhere), the stopped order, or the discharge."""
    result = op.result or {}
    code = result.get("conflict") or (result.get("error") or {}).get("code")
    if task is not None and code == "already_done" and task.status == TASK_DONE:
        who = people.get(task.done_by_id)
        device = devices.get(task.done_device_id)
        fields = [(label, value) for label, value in (("Value", task.value),
                                                      ("Note", task.note)) if value]
        return Side(person=who.name if who else None, at=task.done_at,
                    device=device.label if device else None, fields=fields)
    if task is not None and not task.order.is_active:
        who = people.get(task.order.stopped_by_id) or (
            db.session.get(User, task.order.stopped_by_id) if task.order.stopped_by_id
            else None)
        return Side(person=who.name if who else None, at=task.order.stopped_at,
                    summary=f"{task.order.name} was stopped"
                    + (f": {task.order.stop_reason}" if task.order.stop_reason else ""))
    if patient is not None and patient.status != "admitted":
        who = db.session.get(User, patient.discharged_by_id) if patient.discharged_by_id \
            else None
        return Side(person=who.name if who else None, at=patient.discharged_at,
                    summary=f"{patient.name} was discharged")
    return None
