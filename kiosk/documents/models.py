"""Archived documents (a PDF each) and their deliveries (folder, e-mail, practice system).

The rows are also the queue: a document waits for its PDF as `queued` with the time of its
next try; a worker claims it for a while (a lease), so a worker that dies mid-render leaves
the document to the next one. The HTML is kept as it stood when the document was
finalised: a retry renders the same document, never a newer state of the sheet.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

DOC_QUEUED = "queued"
DOC_READY = "ready"
DOC_FAILED = "failed"
DOC_KINDS = ("anaesthesia", "addendum", "form", "discharge", "merged")
DELIVERY_CHANNELS = ("folder", "email", "connector")
DELIVERY_QUEUED = "queued"
DELIVERY_SENT = "sent"
DELIVERY_FAILED = "failed"
MAX_ATTEMPTS = 5


class Document(UidMixin, TimestampMixin, db.Model):
    """One patient's finalised document: its HTML as finalised, then its PDF."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    source_uid: Mapped[str | None] = mapped_column(String(36), index=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default=DOC_QUEUED, index=True)
    html: Mapped[str | None] = deferred(mapped_column(Text))
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    sha256: Mapped[str | None] = mapped_column(String(64))
    pages: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    finalised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient = relationship("Patient")
    finalised_by = relationship("User")

    @property
    def is_ready(self) -> bool:
        """True once the PDF is archived."""
        return self.status == DOC_READY


class DocumentDelivery(db.Model):
    """One document sent one way (a folder, e-mail, the practice system), at most once."""

    __tablename__ = "document_deliveries"
    __table_args__ = (UniqueConstraint("document_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    channel: Mapped[str] = mapped_column(String(12))
    target: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default=DELIVERY_QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)

    document = relationship("Document")
