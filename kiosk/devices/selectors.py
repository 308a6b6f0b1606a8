"""Reads of devices: lists, what each tablet carries, and the sync dashboard."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..clinic.models import Ward
from ..core import clock
from ..core.errors import NotFound
from ..extensions import db
from ..patients.models import Patient
from ..sync.models import DeviceEvent, SyncOp
from .models import Device, DevicePatient

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


def dashboard_rows(*, now: datetime | None = None) -> list[DashboardRow]:
    """Every device's sync state: waiting ops, silence, skew, gaps and unreviewed conflicts."""
    now = now or clock.utcnow()
    fresh = confirm_within()
    conflicts = dict(db.session.execute(
        select(SyncOp.device_id, func.count()).where(
            SyncOp.status.in_(("conflict", "rejected")), SyncOp.dismissed_at.is_(None))
        .group_by(SyncOp.device_id)).all())
    gaps = dict(db.session.execute(
        select(DeviceEvent.device_id, func.count()).where(DeviceEvent.kind == "gap")
        .group_by(DeviceEvent.device_id)).all())
    rows = []
    for device in devices_list():
        seen = device.last_seen_at
        rows.append(DashboardRow(
            device=device, conflicts=conflicts.get(device.id, 0), gaps=gaps.get(device.id, 0),
            silent=device.kind == "tablet" and (seen is None or now - seen > fresh),
            waiting=(device.outbox_pending or 0) > 0,
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
