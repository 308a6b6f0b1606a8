"""Clinic settings (one row) and wards."""

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.models import TimestampMixin
from ..extensions import db


class ClinicSettings(TimestampMixin, db.Model):
    """The clinic's name, time zone and the rules boards and sheets follow."""

    __tablename__ = "clinic_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="Veterinary hospital")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    board_hours_back: Mapped[int] = mapped_column(Integer, default=2)
    board_hours_ahead: Mapped[int] = mapped_column(Integer, default=10,
                                                      server_default="10")
    due_grace_minutes: Mapped[int] = mapped_column(Integer, default=15)
    allow_direct_patient_creation: Mapped[bool] = mapped_column(Boolean, default=False)
    board_rotate_seconds: Mapped[int] = mapped_column(Integer, default=15)
    # Shared tablets lock after this many minutes without a touch.
    tablet_lock_minutes: Mapped[int] = mapped_column(Integer, default=5)
    # Where finalised documents go besides the patient's record (documents/delivery.py).
    documents_folder: Mapped[str | None] = mapped_column(String(500))
    documents_email: Mapped[str | None] = mapped_column(String(500))
    documents_connector: Mapped[bool] = mapped_column(Boolean, default=False)
    documents_merge_at_discharge: Mapped[bool] = mapped_column(Boolean, default=False)
    # Messages to clients (messaging/safety.py): SMS and voice calls wait out the quiet
    # hours (clinic time, "HH:MM"; start == end: none) unless urgent, and an owner is sent
    # at most `client_message_limit` messages a day (more wait their turn, none is dropped).
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00",
                                             server_default="21:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00",
                                           server_default="08:00")
    client_message_limit: Mapped[int] = mapped_column(Integer, default=10,
                                                      server_default="10")
    # How long a client portal link stays valid.
    portal_link_days: Mapped[int] = mapped_column(Integer, default=14,
                                                  server_default="14")


class Ward(TimestampMixin, db.Model):
    """An area of the hospital (ICU, surgery, boarding …); each has its own board."""

    __tablename__ = "wards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    code: Mapped[str | None] = mapped_column(String(20))
