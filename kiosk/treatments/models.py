"""Orders, tasks, completions and notes."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

ORDER_KINDS = ("medication", "fluid", "observation", "procedure", "task")
ROUTES = ("IV", "IM", "SC", "PO", "IO", "IN", "topical", "rectal", "inhaled", "ophthalmic",
          "otic", "transdermal")
VALUE_TYPES = ("none", "number", "text")
TASK_OPEN = "scheduled"
TASK_DONE = "done"
TASK_SKIPPED = "skipped"
TASK_CANCELLED = "cancelled"


class Order(UidMixin, TimestampMixin, db.Model):
    """What the doctor ordered for a patient, and how often."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    dose: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    units: Mapped[str | None] = mapped_column(String(20))
    concentration: Mapped[str | None] = mapped_column(String(40))
    volume_ml: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))
    route: Mapped[str | None] = mapped_column(String(20))
    rate_ml_h: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))
    additives: Mapped[str | None] = mapped_column(String(200))
    value_type: Mapped[str] = mapped_column(String(10), default="none")
    value_units: Mapped[str | None] = mapped_column(String(20))
    every_hours: Mapped[int | None] = mapped_column(Integer)
    times: Mapped[list] = mapped_column(JSON, default=list)
    prn: Mapped[bool] = mapped_column(Boolean, default=False)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    instructions: Mapped[str | None] = mapped_column(String(300))
    billable_code: Mapped[str | None] = mapped_column(String(40))
    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(10), default="active", index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    stop_reason: Mapped[str | None] = mapped_column(String(200))
    # Tasks exist up to this time; extending the sheet generates the next ones.
    generated_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient = relationship("Patient")
    tasks_made = 0  # set by order_create: how many tasks it generated (not stored)

    @property
    def is_active(self) -> bool:
        """True until the order is stopped."""
        return self.status == "active"

    @property
    def schedule_label(self) -> str:
        """How often, in words: 'q4h', '08:00, 20:00', 'PRN'."""
        if self.prn:
            return "PRN"
        if self.every_hours:
            return "q24h (daily)" if self.every_hours == 24 else f"q{self.every_hours}h"
        if self.times:
            return ", ".join(self.times)
        return "once"

    @property
    def dose_label(self) -> str:
        """Dose, units and route as a nurse reads them: '2.5 mg IV'."""
        parts = []
        if self.dose is not None:
            parts.append(f"{self.dose.normalize():f}")
        if self.units:
            parts.append(self.units)
        if self.rate_ml_h is not None:
            parts.append(f"{self.rate_ml_h.normalize():f} mL/h")
        if self.route:
            parts.append(self.route)
        return " ".join(parts)


class Task(UidMixin, db.Model):
    """One due time of an order. Its uid is uuid5(order uid, due time), as SYNC.md says."""

    __tablename__ = "tasks"
    # Boards and sheets read a patient's tasks in a time window.
    __table_args__ = (
        Index("ix_tasks_patient_id_due_at", "patient_id", "due_at"),
        # Only open tasks: the "left undone yesterday" badge reads these alone.
        Index("ix_tasks_open_patient_id_due_at", "patient_id", "due_at",
              sqlite_where=text("status = 'scheduled'"),
              postgresql_where=text("status = 'scheduled'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(12), default=TASK_OPEN)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    done_device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    value: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(String(500))
    skip_reason: Mapped[str | None] = mapped_column(String(200))

    order = relationship("Order")
    patient = relationship("Patient")
    done_by = relationship("User", foreign_keys=[done_by_id])


class TaskCompletion(db.Model):
    """Every completion recorded for a task; the first stands, later ones are duplicates."""

    __tablename__ = "task_completions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    done_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    value: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(String(500))
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why this completion needs review (already_done, order_stopped, patient_discharged).
    conflict: Mapped[str | None] = mapped_column(String(30))

    task = relationship("Task")


class Note(UidMixin, db.Model):
    """A free-text note on a patient; appended, never overwritten."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)

    user = relationship("User", lazy="joined")
    patient = relationship("Patient")
