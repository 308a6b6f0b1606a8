"""Writes of the sync dashboard; a request's processing is in envelope, turns, heartbeat,
execution and records."""

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_ORDERS, permission_check
from ..core.errors import NotFound
from ..core.events import event_record
from ..extensions import db
from .models import SyncOp


def sync_op_dismiss(*, actor, device, op_id: int) -> SyncOp:
    """Mark a device's conflict or refused op as reviewed (it stays in the history)."""
    permission_check(actor, LEVEL_ORDERS, "dismiss sync problems")
    record = db.session.get(SyncOp, op_id)
    if record is None or record.device_id != device.id:
        raise NotFound("There is no such op on this device.")
    if record.dismissed_at is None:
        record.dismissed_at = clock.utcnow()
        audit_record(action="sync.dismiss", entity="device", entity_uid=device.public_id,
                     user=actor, detail={"seq": record.seq, "op": record.op_id})
        event_record(db.session, "device.changed", device=device.id)
        if record.name == "patient.discharge" and record.patient_uid:
            event_record(db.session, "patient.changed", patient=record.patient_uid)
    return record
