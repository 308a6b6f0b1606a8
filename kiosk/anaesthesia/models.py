"""An anaesthesia sheet and its entries: appended, never edited, merged by time."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

SHEET_OPEN = "open"
SHEET_FINALISED = "finalised"
ENTRY_KINDS = ("header", "pre", "drug", "event", "vitals", "note")
KIND_LABELS = {"header": "Header", "pre": "Pre-anaesthetic", "drug": "Drug", "event": "Event",
               "vitals": "Vitals", "note": "Note"}


class AnaesthesiaSheet(UidMixin, TimestampMixin, db.Model):
    """One anaesthetic of one patient. A patient has at most one open sheet: a second one
    started elsewhere (two tablets offline) joins it (`merged_into`), never replaces it."""

    __tablename__ = "anaesthesia_sheets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=SHEET_OPEN, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    started_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    finalised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("anaesthesia_sheets.id"))

    patient = relationship("Patient")
    started_by = relationship("User", foreign_keys=[started_by_id])
    finalised_by = relationship("User", foreign_keys=[finalised_by_id])
    merged_into = relationship("AnaesthesiaSheet", remote_side=[id])

    @property
    def is_finalised(self) -> bool:
        """True once finalised: later entries are addenda."""
        return self.status == SHEET_FINALISED


class AnaesthesiaEntry(UidMixin, db.Model):
    """Something recorded on a sheet at a time: header fields, pre-anaesthetic values, a
    drug, an event, a row of vitals or a note. Entries after finalising are addenda."""

    __tablename__ = "anaesthesia_entries"
    __table_args__ = (Index("ix_anaesthesia_entries_sheet_id_at", "sheet_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("anaesthesia_sheets.id"))
    kind: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    addendum: Mapped[bool] = mapped_column(Boolean, default=False)
    # Values outside the usual range that the person confirmed (their field names).
    confirmed: Mapped[list] = mapped_column(JSON, default=list)
    # An addendum's archived document (addenda are archived apart from the sheet).
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))

    sheet = relationship("AnaesthesiaSheet")
    user = relationship("User", lazy="joined")
    document = relationship("Document")

    @property
    def summary(self) -> str:
        """The entry in one line, as a person reads it (entries.entry_describe)."""
        from .entries import entry_describe

        return entry_describe(self.kind, self.data, self.confirmed)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)
