"""Messages to clients, recorded to be sent: the queue the channels work from."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import UidMixin, UTCDateTime
from ..extensions import db

CHANNELS = ("email", "sms", "voice", "portal")
MESSAGE_QUEUED = "queued"


class ClientMessage(UidMixin, db.Model):
    """A message (or a form to fill) for a patient's owner on one channel. Its key is
    unique: whoever records it twice (a retried step) records it once."""

    __tablename__ = "client_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    form_template_id: Mapped[int | None] = mapped_column(ForeignKey("form_templates.id"))
    status: Mapped[str] = mapped_column(String(12), default=MESSAGE_QUEUED, index=True)
    status_detail: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    source: Mapped[str | None] = mapped_column(String(200))

    patient = relationship("Patient")
    form_template = relationship("FormTemplate")
