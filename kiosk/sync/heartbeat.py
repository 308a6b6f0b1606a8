"""What a request says of its device, ops or none: when it was seen, its outbox, its
clock's skew and what the tablet's browser reports."""

from datetime import timedelta

from ..core.events import event_record
from ..core.validate import INT_MAX
from ..devices.models import DeviceEvent
from ..extensions import db
from .envelope import Batch

SKEW_FLAG = timedelta(minutes=5)


def sync_heartbeat(*, device, batch: Batch) -> None:
    """Note what the device reported: when it was seen, its outbox and its clock skew."""
    skew_ms = max(-INT_MAX, min(INT_MAX, int(batch.skew.total_seconds() * 1000)))
    limit_ms = SKEW_FLAG.total_seconds() * 1000
    was_flagged = device.skew_ms is not None and abs(device.skew_ms) > limit_ms
    device.last_seen_at = batch.received_at
    device.skew_ms = skew_ms
    if batch.pending is not None:
        device.outbox_pending = batch.pending
        device.outbox_oldest_at = batch.oldest_at
    if batch.patients is not None:
        device.outbox_patients = batch.patients
    if batch.discharges is not None and batch.discharges != (device.outbox_discharges or []):
        for uid in set(batch.discharges) ^ set(device.outbox_discharges or []):
            event_record(db.session, "patient.changed", patient=uid)  # pending boards
        device.outbox_discharges = batch.discharges
    for key, value in batch.client.items():
        setattr(device, key, value)
    event_record(db.session, "device.synced", device=device.id)
    if abs(batch.skew) > SKEW_FLAG and not was_flagged:
        db.session.add(DeviceEvent(device_id=device.id, kind="skew",
                                   detail={"skew_ms": skew_ms}))


def pending_after(device, batch: Batch) -> None:
    """What still waits on the device once it reads this answer: what it reported, less
    the ops of this request the server now holds."""
    if batch.pending is None:
        return
    device.outbox_pending = max(0, batch.pending - len(batch.results))
    if device.outbox_pending == 0:
        device.outbox_oldest_at = None
        device.outbox_patients = []
        device.outbox_discharges = []
