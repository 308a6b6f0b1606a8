"""Incident notes a manager posts, and staff's e-mail subscriptions to notices with the
notices and their deliveries (the rows are the queue the sending job works through)."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import UidMixin, UTCDateTime
from ..extensions import db

SEVERITIES = ("info", "minor", "major")
TOPICS = ("maintenance", "incidents")
# pending → sent, or failed (after its tries, or refused for good), or dropped (the
# address was unsubscribed before it went).
DELIVERY_STATES = ("pending", "sent", "failed", "dropped")


class IncidentNote(UidMixin, db.Model):
    """A note about the service (not about patients) shown on the public status page."""

    __tablename__ = "incident_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(8), default="info")
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow, index=True)
    posted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    posted_by = relationship("User", foreign_keys=[posted_by_id])
    resolved_by = relationship("User", foreign_keys=[resolved_by_id])


class StatusSubscription(UidMixin, db.Model):
    """An e-mail address that asked for maintenance and/or incident notices. Nothing is
    sent to it but its confirmation until its owner followed the link (double opt-in)."""

    __tablename__ = "status_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    incidents: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The address the subscriber used the server at: the links of its e-mails start
    # there when KIOSK_PUBLIC_URL is not set.
    link_base: Mapped[str | None] = mapped_column(String(300))

    user = relationship("User")


class StatusNotice(UidMixin, db.Model):
    """One notice (a window scheduled, an incident posted, a confirmation asked): its
    words, written once; `key` is the fact's own, so the same fact is one notice."""

    __tablename__ = "status_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    topic: Mapped[str] = mapped_column(String(12))  # maintenance, incidents or confirm
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)


class StatusDelivery(db.Model):
    """A notice to one subscriber: one row each (a retry never makes a second), claimed
    by a sender for a lease (`next_at` moved past it) while it sends."""

    __tablename__ = "status_deliveries"
    __table_args__ = (UniqueConstraint("notice_id", "subscription_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("status_notices.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("status_subscriptions.id"),
                                                 index=True)
    status: Mapped[str] = mapped_column(String(8), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)

    notice = relationship("StatusNotice")
    subscription = relationship("StatusSubscription")
