"""Charges, the item catalogue, end-of-shift marks and the practice-system connector."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

# What can cause a charge; the charge's key is "<cause>:<uid of what caused it>".
CAUSES = ("task", "anaesthesia_drug", "form", "manual", "reversal")
# Catalogue items that charge by themselves when something matching them happens.
APPLIES_TO = ("order", "anaesthesia_drug", "form", "manual")
CONNECTOR_KINDS = ("none", "webhook")


class BillingItem(UidMixin, TimestampMixin, db.Model):
    """An item the clinic charges for: its code in the practice system, words and price.

    `applies_to` says what charges it by itself: an anaesthesia drug or a finalised form
    whose name is `match` (case-insensitive); order items are charged through the order's
    own code and price, manual ones by hand."""

    __tablename__ = "billing_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(String(120))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    applies_to: Mapped[str] = mapped_column(String(20), default="manual")
    match: Mapped[str | None] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Charge(UidMixin, db.Model):
    """One billable action, captured once: its key is derived from what caused it (the task
    uid, the anaesthesia entry, the form), so a resend, a second tablet's completion or a
    replay finds the key taken and charges nothing more. Never edited: an undo or a
    correction is a reversing charge (negative quantity) that points at this one."""

    __tablename__ = "charges"
    __table_args__ = (
        Index("ix_charges_performed_at", "performed_at"),
        Index("ix_charges_patient_id_performed_at", "patient_id", "performed_at"),
        # What the sender still has to send (a small set, read often).
        Index("ix_charges_unsent", "send_next_at", sqlite_where=text("sent_at IS NULL"),
              postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    cause: Mapped[str] = mapped_column(String(20))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    item_code: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    # Recorded on a tablet that could not reach the server: it arrived late, through sync.
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("charges.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    # Sending to the practice system (the webhook connector): the row is the queue.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_next_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    send_error: Mapped[str | None] = mapped_column(String(500))

    patient = relationship("Patient")
    user = relationship("User")
    device = relationship("Device")
    reverses = relationship("Charge", remote_side=[id])


class ShiftMark(UidMixin, db.Model):
    """"End of shift": the line a billing report is drawn between. Marks only go forward."""

    __tablename__ = "shift_marks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    note: Mapped[str | None] = mapped_column(String(200))

    user = relationship("User")
    device = relationship("Device")


class BillingConnector(db.Model):
    """The one practice-system connector of the clinic (a single row), and its pause."""

    __tablename__ = "billing_connectors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="none")
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    pause_reason: Mapped[str | None] = mapped_column(String(200))
