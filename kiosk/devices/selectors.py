"""Reads of devices: lists, what each tablet carries, and the sync dashboard."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..clinic.models import Ward
from ..core.clock import utcnow
from ..core.errors import NotFound
from ..extensions import db
from ..patients.models import Patient
from ..sync.models import DeviceEvent, SyncOp
from .models import Device, DevicePatient

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


def device_by_public_id(public_id: str) -> Device:
    """The device called 'd_3', or NotFound."""
    number = public_id[2:] if isinstance(public_id, str) and public_id.startswith("d_") else ""
    if not number.isdigit() or len(number) > 9:
        raise NotFound("There is no device with that id.")
    return device_by_id(int(number))


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


def _admitted():
    return select(Patient).where(Patient.status == "admitted")


def carried_patients(device: Device) -> list[Patient] | None:
    """The admitted patients a tablet carries (its ward's and those picked for it), by
    ward, cage and name; None when it has no assignment at all (it carries every one)."""
    picked = select(DevicePatient.patient_id).where(DevicePatient.device_id == device.id)
    has_picks = db.session.scalar(select(func.count()).select_from(picked.subquery()))
    if device.ward_id is None and not has_picks:
        return None
    query = _admitted().where(Patient.id.in_(picked) | (Patient.ward_id == device.ward_id)
                              if device.ward_id else Patient.id.in_(picked))
    return list(db.session.scalars(query.outerjoin(Ward, Ward.id == Patient.ward_id)
                                   .order_by(Ward.name, Patient.cage, Patient.name)))


def carriers_by_patient(patients: list[Patient]) -> dict[int, list[Device]]:
    """Which active tablets carry each of these patients (two queries whatever the count)."""
    if not patients:
        return {}
    active = (Device.revoked_at.is_(None), Device.kind == "tablet")
    out: dict[int, list[Device]] = {p.id: [] for p in patients}
    ward_ids = {p.ward_id for p in patients if p.ward_id is not None}
    by_ward: dict[int, list[Device]] = {}
    if ward_ids:
        for device in db.session.scalars(select(Device).where(
                Device.ward_id.in_(ward_ids), *active).order_by(Device.colour, Device.number)):
            by_ward.setdefault(device.ward_id, []).append(device)
    for p in patients:
        out[p.id].extend(by_ward.get(p.ward_id, []))
    rows = db.session.execute(select(DevicePatient.patient_id, Device).join(
        Device, Device.id == DevicePatient.device_id).where(
        DevicePatient.patient_id.in_(list(out)), *active).order_by(Device.colour, Device.number))
    for patient_id, device in rows:
        if device not in out[patient_id]:
            out[patient_id].append(device)
    return out


def assignment_cards(*, include_revoked: bool = False) -> list[dict]:
    """Every device with what it carries, shaped for the assignment page and its PDF."""
    cards = []
    for device in devices_list():
        if device.revoked_at is not None and not include_revoked:
            continue
        patients = carried_patients(device) if device.kind == "tablet" else None
        picked = set(db.session.scalars(select(DevicePatient.patient_id).where(
            DevicePatient.device_id == device.id)))
        cards.append({
            "id": device.public_id, "device": device, "label": device.label,
            "name": device.name, "colour": device.colour, "number": device.number,
            "kind": device.kind, "ward": device.ward.name if device.ward else None,
            "board": device.board.name if device.board else None,
            "revoked": device.revoked_at is not None, "assigned": patients is not None,
            "patients": [{"uid": p.uid, "name": p.name, "species": p.species.capitalize(),
                          "cage": p.cage, "ward": p.ward.name if p.ward else None,
                          "picked": p.id in picked}
                         for p in (patients or [])]})
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
    now = now or utcnow()
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
