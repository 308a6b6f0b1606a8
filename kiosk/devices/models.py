"""Devices: tablets and wall displays, with a hashed bearer token; the record of every op
a device sent (sync writes it) and each device's sync history."""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UTCDateTime
from ..extensions import db
from ..patients.models import Patient


class Device(TimestampMixin, db.Model):
    """A provisioned tablet or display ("Blue #2"); completions record which one acted."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    colour: Mapped[str] = mapped_column(String(20), default="blue")
    number: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20), default="tablet")
    token_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A wall display shows one board and may listen to that board's pokes only.
    board_id: Mapped[int | None] = mapped_column(ForeignKey("boards.id", ondelete="SET NULL"))
    # A tablet carries a ward's admitted patients and/or patients picked one by one.
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id", ondelete="SET NULL"))

    # Pairing: a short one-time code (stored hashed) a tablet exchanges for its token.
    pairing_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    pairing_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pairing_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Moved on by re-pairing and revoking: a tablet or display session made before (its
    # cookie holds the number it was made with) stops working (core.auth).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Sync state (SYNC.md): the last op processed, and what the last request reported.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outbox_pending: Mapped[int] = mapped_column(Integer, default=0)
    outbox_oldest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # From the heartbeat's outbox: the patients its waiting ops touch, and those it holds a
    # discharge for (what discharge checks and the pending board need to know).
    outbox_patients: Mapped[list] = mapped_column(JSON, default=list)
    outbox_discharges: Mapped[list] = mapped_column(JSON, default=list)
    skew_ms: Mapped[int | None] = mapped_column(Integer)
    # What the tablet's browser reported with its last request (heartbeat).
    app_version: Mapped[str | None] = mapped_column(String(40))
    battery_pct: Mapped[int | None] = mapped_column(Integer)
    battery_charging: Mapped[bool | None] = mapped_column(Boolean)

    board = relationship("Board", lazy="joined")
    ward = relationship("Ward", lazy="joined")

    @property
    def is_active(self) -> bool:
        """True until the device is revoked."""
        return self.revoked_at is None

    @property
    def is_paired(self) -> bool:
        """True once the device holds a token (paired, or provisioned on the command line)."""
        return self.token_hash is not None

    @property
    def public_id(self) -> str:
        """The id the sync protocol uses, e.g. 'd_3'."""
        return f"d_{self.id}"

    @property
    def label(self) -> str:
        """What is written on the tablet's tape: 'Blue #2'."""
        colour = self.colour.capitalize()
        return f"{colour} #{self.number}" if self.number else f"{colour} {self.name}"

    def wards_worked(self) -> set[int] | None:
        """The wards a tablet works on: its own ward and those of the patients picked for
        it; None when that says nothing (no ward, and no picked patient on a ward: it
        carries every patient)."""
        wards = {self.ward_id} if self.ward_id is not None else set()
        wards |= set(db.session.scalars(
            select(Patient.ward_id).join(DevicePatient, DevicePatient.patient_id == Patient.id)
            .where(DevicePatient.device_id == self.id, Patient.ward_id.is_not(None))
            .distinct()))
        return wards or None


class DevicePatient(db.Model):
    """A patient picked for a tablet by hand (besides the patients of its ward)."""

    __tablename__ = "device_patients"
    __table_args__ = (UniqueConstraint("device_id", "patient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"),
                                           index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)


SYNC_OP_STATUSES = ("applied", "conflict", "rejected", "duplicate")


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
