"""The stored record of every op a device sent, and each device's sync history."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core import clock
from ..core.models import UTCDateTime
from ..extensions import db

STATUSES = ("applied", "conflict", "rejected", "duplicate")


class SyncOp(db.Model):
    """One op as received: what it said, when (device and corrected), and what came of it."""

    __tablename__ = "sync_ops"
    __table_args__ = (UniqueConstraint("device_id", "seq"), Index("ix_sync_ops_op_id", "op_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    seq: Mapped[int] = mapped_column(Integer)
    op_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(60))
    args: Mapped[dict] = mapped_column(JSON)
    user_ref: Mapped[str | None] = mapped_column(String(40))
    device_at: Mapped[str | None] = mapped_column(String(40))
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    status: Mapped[str] = mapped_column(String(12))
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    # The op this one repeated (status duplicate), or None.
    original_id: Mapped[int | None] = mapped_column(ForeignKey("sync_ops.id"))
    patient_uid: Mapped[str | None] = mapped_column(String(36), index=True)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeviceEvent(db.Model):
    """Something in a device's sync history worth a look: a gap, clock skew, a stale op."""

    __tablename__ = "device_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    kind: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
