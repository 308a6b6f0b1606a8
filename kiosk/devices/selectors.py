"""Reads of devices: lists, what each tablet carries, and the sync dashboard."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..clinic.models import Ward
from ..core import clock
from ..core.errors import NotFound
from ..extensions import db
from ..patients.models import Patient
from .models import Device, DeviceEvent, DevicePatient, SyncOp

# A device not heard from for this long stands out on the dashboard (tablets send a
# heartbeat every minute while their page is open).
SILENT_AFTER = timedelta(minutes=10)
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
    """One device on the sync dashboard, with what should catch the eye."""

    device: Device
    conflicts: int
    gaps: int
    silent: bool
    waiting: bool
    skewed: bool

    @property
    def state(self) -> str:
        """'ok', 'waiting' (unsynced work), 'silent' (not heard from), 'unpaired' (no token
        yet, so nothing to sync) or 'revoked'."""
        if self.device.revoked_at is not None:
            return "revoked"
        if not self.device.is_paired:
            return "unpaired"
        if self.waiting:
            return "waiting"
        if self.silent:
            return "silent"
        return "ok"


def dashboard_rows(*, now: datetime | None = None) -> list[DashboardRow]:
    """Every device's sync state: waiting ops, silence, skew, gaps and unreviewed conflicts."""
    now = now or clock.utcnow()
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
            silent=device.kind == "tablet" and (seen is None or now - seen > SILENT_AFTER),
            waiting=(device.outbox_pending or 0) > 0,
            skewed=device.skew_ms is not None and abs(device.skew_ms) > SKEW_LIMIT_MS))
    order = {"waiting": 0, "silent": 1, "ok": 2, "unpaired": 3, "revoked": 4}
    rows.sort(key=lambda r: order[r.state])
    return rows


def device_problems(device: Device, *, limit: int = 50) -> list[SyncOp]:
    """A device's conflicts and rejected ops not yet dismissed, newest first."""
    return list(db.session.scalars(select(SyncOp).where(
        SyncOp.device_id == device.id, SyncOp.status.in_(("conflict", "rejected")),
        SyncOp.dismissed_at.is_(None)).order_by(SyncOp.seq.desc()).limit(limit)))
