"""Messages to clients: the rows are the queue the channels send from."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import UidMixin, UTCDateTime
from ..extensions import db

CHANNELS = ("email", "sms", "voice", "portal")
# A message's life: queued → (held: quiet hours or the daily limit, until send_next_at) →
# sending (claimed with a lease) → sent (the provider or SMTP server took it; the portal
# shows it) → delivered (the provider's callback) — or failed (the provider gave up, or
# a permanent refusal) or not_sent (a safety rule said no: opted out, no address …).
MESSAGE_QUEUED = "queued"
MESSAGE_HELD = "held"
MESSAGE_SENDING = "sending"
MESSAGE_SENT = "sent"
MESSAGE_DELIVERED = "delivered"
MESSAGE_FAILED = "failed"
MESSAGE_NOT_SENT = "not_sent"
STATUSES = (MESSAGE_QUEUED, MESSAGE_HELD, MESSAGE_SENDING, MESSAGE_SENT, MESSAGE_DELIVERED,
            MESSAGE_FAILED, MESSAGE_NOT_SENT)
# Still to be sent by a worker.
WAITING = (MESSAGE_QUEUED, MESSAGE_HELD, MESSAGE_SENDING)
# Went out (what the daily limit counts).
SENT_STATUSES = (MESSAGE_SENT, MESSAGE_DELIVERED)
STATUS_LABELS = {MESSAGE_QUEUED: "Queued", MESSAGE_HELD: "Held", MESSAGE_SENDING: "Sending",
                 MESSAGE_SENT: "Sent", MESSAGE_DELIVERED: "Delivered",
                 MESSAGE_FAILED: "Failed", MESSAGE_NOT_SENT: "Not sent"}


class ClientMessage(UidMixin, db.Model):
    """A message (or a form to fill) for a patient's owner on one channel. Its key is
    unique: whoever records it twice (a retried step) records it once. The owner's address
    is read when it is sent and kept in `to_address`."""

    __tablename__ = "client_messages"
    __table_args__ = (
        Index("ix_client_messages_waiting", "send_next_at",
              sqlite_where=text("status IN ('queued', 'held', 'sending')"),
              postgresql_where=text("status IN ('queued', 'held', 'sending')")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # The template allowed clinical detail in an SMS or a call (else a notice is sent).
    clinical_ok: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Urgent: SMS and calls go even in the quiet hours.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    form_template_id: Mapped[int | None] = mapped_column(ForeignKey("form_templates.id"))
    # The form the client filled through the portal for this message (one per message).
    form_id: Mapped[int | None] = mapped_column(ForeignKey("patient_forms.id"))
    status: Mapped[str] = mapped_column(String(12), default=MESSAGE_QUEUED, index=True)
    status_detail: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    source: Mapped[str | None] = mapped_column(String(200))
    # The queue: due from send_next_at; a sender's claim moves it past a lease.
    send_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=clock.utcnow)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claim: Mapped[str | None] = mapped_column(String(36))
    # When a sender began handing this e-mail to the SMTP server (cleared with the outcome):
    # set on a message whose sender died, it may have gone (see sending.WHY_UNCERTAIN).
    send_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    to_address: Mapped[str | None] = mapped_column(String(254))
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The client opened the portal link of this message.
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient = relationship("Patient")
    owner = relationship("Owner")
    form_template = relationship("FormTemplate")
    form = relationship("PatientForm")

    @property
    def status_label(self) -> str:
        """The status in words."""
        return STATUS_LABELS.get(self.status, self.status)
