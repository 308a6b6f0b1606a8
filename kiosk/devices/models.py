"""Devices: tablets and wall displays, with a hashed bearer token."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UTCDateTime
from ..extensions import db


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
