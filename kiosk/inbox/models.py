"""Staff tasks (a person or a role, a due date, a reminder) and internal staff messages."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import UidMixin, UTCDateTime
from ..extensions import db

TASK_OPEN, TASK_DONE, TASK_CANCELLED = "open", "done", "cancelled"
# A message's source when a person wrote it on the inbox's form: "staff:u_5".
SENDER_SOURCE = "staff:"


class StaffTask(UidMixin, db.Model):
    """Something a person (or anyone of a level, a role) must do by `due_at`, often for a
    patient. `source` names what created it (a flow run's step) for the timeline."""

    __tablename__ = "staff_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    assignee_level: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=TASK_OPEN, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    end_reason: Mapped[str | None] = mapped_column(String(200))
    # What made it ("flow_step:<uid>"): a run finds its tasks by it.
    source: Mapped[str | None] = mapped_column(String(200), index=True)

    patient = relationship("Patient")
    assignee = relationship("User", foreign_keys=[assignee_id])
    done_by = relationship("User", foreign_keys=[done_by_id])


class StaffMessage(UidMixin, db.Model):
    """An internal message to a person or to everyone of a level (a role)."""

    __tablename__ = "staff_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    to_level: Mapped[int | None] = mapped_column(Integer)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow, index=True)
    source: Mapped[str | None] = mapped_column(String(200))
    # A message to a person is read once; a role's message is read by each of its people.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient = relationship("Patient")
    to_user = relationship("User")


class StaffMessageRead(db.Model):
    """That one person of a role read a message sent to the role."""

    __tablename__ = "staff_message_reads"
    __table_args__ = (UniqueConstraint("message_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("staff_messages.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
