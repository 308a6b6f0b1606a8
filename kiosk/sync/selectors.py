"""Reads for the API, shaped as SYNC.md lists them."""

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..core.clock import format_iso_z
from ..devices.models import Device
from ..extensions import db
from ..patients.models import Patient
from ..staff.models import User
from ..treatments.models import Order, Task


def _iso(value):
    return format_iso_z(value) if value else None


def patients_json(*, status: str | None = "admitted") -> list[dict]:
    """Patients as the tablet and integrations read them."""
    query = select(Patient).order_by(Patient.name)
    if status:
        query = query.where(Patient.status == status)
    return [{"uid": p.uid, "name": p.name, "species": p.species, "breed": p.breed,
             "sex": p.sex, "weight_kg": float(p.weight_kg) if p.weight_kg is not None else None,
             "ward": p.ward.name if p.ward else None, "cage": p.cage, "doctor": p.doctor,
             "colour": p.colour, "alerts": p.alerts or [], "status": p.status,
             "pims_id": p.pims_id, "file_number": p.file_number, "unallocated": p.unallocated,
             "admitted_at": _iso(p.admitted_at), "discharged_at": _iso(p.discharged_at)}
            for p in db.session.scalars(query)]


def tasks_json(patient_uid: str) -> list[dict] | None:
    """A patient's tasks by due time, or None when there is no such patient."""
    patient_id = db.session.scalar(select(Patient.id).where(Patient.uid == patient_uid))
    if patient_id is None:
        return None
    done_by = aliased(User)
    device = aliased(Device)
    rows = db.session.execute(
        select(Task, Order.uid, Order.name, Order.kind, done_by.public_id_expr(),
               device.id)
        .join(Order, Order.id == Task.order_id)
        .outerjoin(done_by, done_by.id == Task.done_by_id)
        .outerjoin(device, device.id == Task.done_device_id)
        .where(Task.patient_id == patient_id).order_by(Task.due_at, Order.name))
    return [{"uid": t.uid, "order": order_uid, "name": name, "kind": kind,
             "due_at": _iso(t.due_at), "status": t.status, "done_at": _iso(t.done_at),
             "done_by": who, "device": f"d_{device_id}" if device_id else None,
             "value": t.value, "note": t.note, "skip_reason": t.skip_reason}
            for t, order_uid, name, kind, who, device_id in rows]


def device_info(public_id: str) -> dict | None:
    """A device's identity and sync state, or None."""
    if not public_id.startswith("d_") or not public_id[2:].isdigit():
        return None
    d = db.session.get(Device, int(public_id[2:]))
    if d is None:
        return None
    return {"id": d.public_id, "name": d.name, "colour": d.colour, "number": d.number,
            "label": d.label, "kind": d.kind, "last_seq": d.last_seq,
            "last_seen": _iso(d.last_seen_at), "last_sync": _iso(d.last_sync_at),
            "pending": d.outbox_pending, "oldest_pending_at": _iso(d.outbox_oldest_at),
            "skew_ms": d.skew_ms, "revoked": d.revoked_at is not None,
            "board": d.board_id, "ward": d.ward_id, "app_version": d.app_version,
            "battery_pct": d.battery_pct}
