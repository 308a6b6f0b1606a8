"""Flows and their versions, message templates, and what they did: events, runs, steps."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

RUN_RUNNING, RUN_COMPLETED, RUN_CANCELLED = "running", "completed", "cancelled"
STEP_PENDING, STEP_DONE, STEP_FAILED, STEP_CANCELLED = "pending", "done", "failed", "cancelled"


class Flow(UidMixin, TimestampMixin, db.Model):
    """A flow as the builder lists it: its name, whether it runs, and its current version.
    Editing publishes a new version; a run keeps the version it started with."""

    __tablename__ = "flows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Denormalised from the current version: which events the evaluator must look at.
    trigger_kind: Mapped[str] = mapped_column(String(30), index=True)
    # No foreign key: flows and their versions would point at each other, a cycle neither
    # table can be created first in; flow_save is the one writer and sets it with the version.
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # A schedule trigger's last occurrence already turned into an event.
    schedule_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    current_version = relationship(
        "FlowVersion", primaryjoin="foreign(Flow.current_version_id) == FlowVersion.id",
        post_update=True)


class FlowVersion(UidMixin, db.Model):
    """One published definition of a flow (trigger, conditions, steps), never edited."""

    __tablename__ = "flow_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    definition: Mapped[dict] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    published_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    flow = relationship("Flow", foreign_keys=[flow_id])
    published_by = relationship("User")


class FlowTemplate(UidMixin, TimestampMixin, db.Model):
    """Words with merge fields ({{ patient.name }}) for messages and notes; checked when
    saved, copied into a run's step when it starts (a later edit changes later runs only)."""

    __tablename__ = "flow_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # Whether an SMS or a voice call may say these words (they may hold clinical detail);
    # otherwise those channels send a notice with the portal link (messaging/sending.py).
    clinical_in_sms: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    # Urgent words go by SMS or call even in the clinic's quiet hours.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class FlowEvent(db.Model):
    """Something that happened that flows may react to, written in the transaction that
    did it (so a crash after the commit loses nothing) with the time it really happened
    (an offline tablet's admission is admitted when it was, not when it synced). Its key
    is unique: the same fact replayed is one event."""

    __tablename__ = "flow_events"
    __table_args__ = (
        Index("ix_flow_events_waiting", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Taken by one evaluator until then (a crashed one's events are taken again after).
    claim: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(300))


class FlowRun(UidMixin, db.Model):
    """One flow started once for one trigger (its key: flow and event), for one patient or
    for the clinic (a schedule), with the version it started on."""

    __tablename__ = "flow_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("flow_versions.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    event_kind: Mapped[str] = mapped_column(String(30))
    event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_data: Mapped[dict] = mapped_column(JSON, default=dict)
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("flow_runs.id"))
    status: Mapped[str] = mapped_column(String(12), default=RUN_RUNNING, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(200))

    flow = relationship("Flow")
    version = relationship("FlowVersion")
    patient = relationship("Patient")
    steps = relationship("FlowStep", back_populates="run", order_by="FlowStep.position")


class FlowStep(UidMixin, db.Model):
    """One step of a run: what to do (copied from the version, templates rendered in), when
    (`run_at`), and what became of it. Pending steps are the queue; a failed one is retried
    with a back-off and, when retries are spent, waits for a manager on the flows page."""

    __tablename__ = "flow_steps"
    __table_args__ = (
        Index("ix_flow_steps_due", "run_at", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("flow_runs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default=STEP_PENDING)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(300))
    cancel_on_discharge: Mapped[bool] = mapped_column(Boolean, default=False)

    run = relationship("FlowRun", back_populates="steps")
