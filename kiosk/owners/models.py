"""Owners as records of their own: contact details, the channel they prefer, their consent
to SMS and voice calls, and their opt-out."""

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

# How an owner may be reached; "portal" only posts the message on the client portal.
OWNER_CHANNELS = ("email", "sms", "voice", "portal")
CHANNEL_LABELS = {"email": "E-mail", "sms": "SMS", "voice": "Voice call", "portal": "Portal"}


class Owner(UidMixin, TimestampMixin, db.Model):
    """A patient's owner (a client). Filled by the practice-system import (keyed by its
    own id when it sends one) or by staff. SMS and voice need the owner's consent; an
    opted-out owner is sent nothing at all until staff or the owner (START) opt back in."""

    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pims_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    # E.164 (+441632960000), as the import or staff gave it once normalised.
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    preferred_channel: Mapped[str] = mapped_column(String(10), default="email")
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    voice_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How the opt-out came: "SMS reply STOP", "staff: <name>: <reason>".
    opted_out_via: Mapped[str | None] = mapped_column(String(200))

    # Named, not imported: patients sit above owners and import them, never the reverse.
    patients = relationship("Patient", back_populates="owner", order_by="Patient.name")

    @property
    def opted_out(self) -> bool:
        """Whether the owner asked to be sent nothing."""
        return self.opted_out_at is not None

    def __repr__(self) -> str:
        return f"<Owner {self.name} {self.uid}>"
