"""Maintenance windows and outages."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import JSON

from ..core import clock
from ..core.models import UidMixin, UTCDateTime
from ..extensions import db

# scheduled → under_way → ended; a scheduled window may be cancelled instead.
WINDOW_STATES = ("scheduled", "under_way", "ended", "cancelled")
# What brought an outage to light: a maintenance window, or tablets that held offline work.
OUTAGE_CAUSES = ("window", "detected")


class MaintenanceWindow(UidMixin, db.Model):
    """A planned window: when it starts and is expected to end, what staff are told, and
    what was switched at its start so that its end puts exactly that back (`restore`)."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[str] = mapped_column(String(12), default="scheduled", index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # What the start changed, so the end restores it: {"allow_direct_patient_creation":
    # previous value, "connector_paused": previous value, "start_mark": mark uid, ...}.
    restore: Mapped[dict] = mapped_column(JSON, default=dict)

    created_by = relationship("User")


class Outage(UidMixin, db.Model):
    """A span when the server was out of reach for the tablets: from a window, or found
    from the offline work tablets sent when they came back. Its report lists what to check."""

    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cause: Mapped[str] = mapped_column(String(12))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("maintenance_windows.id"),
                                                  unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the server was back (a window's end, or the first offline work that arrived).
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    # A manager's "reviewed": the report stays, the banner pointing at it goes.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)

    window = relationship("MaintenanceWindow")
    reviewed_by = relationship("User", foreign_keys=[reviewed_by_id])
