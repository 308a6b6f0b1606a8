"""Boards and their hand-made membership."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UTCDateTime
from ..extensions import db

BOARD_KINDS = ("ward", "list", "pending")
BOARD_FILTERS = ("pending",)


class Board(TimestampMixin, db.Model):
    """A whiteboard: kind 'ward' shows a ward's admitted patients, 'list' its members,
    'pending' every admitted patient with something unfinished."""

    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="ward")
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # "pending": only patients with something unfinished (sheets, forms, PDFs, discharges).
    filter: Mapped[str | None] = mapped_column(String(20))

    ward = relationship("Ward", lazy="joined")

    @property
    def shows(self) -> str:
        """What the board shows, in the words staff read under its name."""
        ward = self.ward.name if self.ward is not None else None
        if self.kind == "pending":
            return (f"Ward {ward}: patients" if ward else "Patients") + \
                " with unfinished work (fills itself)"
        text = f"Ward {ward}" if self.kind == "ward" and ward else "Patients put on it by hand"
        if self.filter == "pending":
            text += ", only those with unfinished work"
        return text


class BoardMember(db.Model):
    """A patient placed by hand on a list board (a patient can be on several boards)."""

    __tablename__ = "board_members"
    __table_args__ = (UniqueConstraint("board_id", "patient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"),
                                          index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
