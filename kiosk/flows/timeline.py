"""A patient's flow timeline: every run newest first, its steps in order, and the staff
tasks and client messages its steps made, with what became of each in plain words.

A handful of queries whatever the number of runs: runs (with their flow and version),
steps, tasks, messages, and the clinic's settings.
"""

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..clinic.selectors import settings_zone
from ..core import clock
from ..extensions import db
from ..inbox.models import TASK_CANCELLED, TASK_DONE, StaffTask
from ..messaging.models import ClientMessage
from .definition import CHANNEL_LABELS, STEP_TYPE_LABELS, TRIGGER_LABELS
from .due import due_text
from .models import (
    RUN_CANCELLED,
    RUN_COMPLETED,
    STEP_CANCELLED,
    STEP_DONE,
    STEP_FAILED,
    Flow,
    FlowRun,
    FlowStep,
    FlowVersion,
)

SOURCE_PREFIX = "flow_step:"

# One set of words for triggers, steps and channels: the builder's.
TRIGGER_WORDS = TRIGGER_LABELS
STEP_WORDS = STEP_TYPE_LABELS
CHANNEL_WORDS = CHANNEL_LABELS


@dataclass
class TimelineTask:
    """A staff task a step made, as the timeline shows it."""

    uid: str
    title: str
    status: str
    assignee: str
    due_at: datetime
    done_at: datetime | None
    end_reason: str | None
    text: str = ""


@dataclass
class TimelineMessage:
    """A message for the client a step recorded, as the timeline shows it."""

    uid: str
    channel: str
    subject: str | None
    status: str
    status_detail: str | None
    created_at: datetime
    text: str = ""


@dataclass
class TimelineStep:
    """One step of a run, with what it made."""

    uid: str
    position: int
    kind: str
    kind_text: str
    label: str
    status: str
    run_at: datetime
    due_at: datetime | None
    done_at: datetime | None
    outcome: str | None
    last_error: str | None
    attempts: int
    text: str = ""
    due_text: str = ""
    tasks: list[TimelineTask] = field(default_factory=list)
    messages: list[TimelineMessage] = field(default_factory=list)


@dataclass
class TimelineRun:
    """One run of a flow for the patient, with its steps in order."""

    uid: str
    flow_name: str
    version_number: int
    event_kind: str
    trigger_text: str
    event_at: datetime
    event_text: str
    status: str
    end_reason: str | None
    ended_at: datetime | None
    text: str = ""
    steps: list[TimelineStep] = field(default_factory=list)


def timeline_for(patient) -> list[TimelineRun]:
    """Every flow run of the patient, newest first, with its steps, tasks and messages."""
    tz, now = settings_zone(), clock.utcnow()
    rows = db.session.execute(
        select(FlowRun, Flow.name, FlowVersion.number)
        .join(Flow, Flow.id == FlowRun.flow_id)
        .join(FlowVersion, FlowVersion.id == FlowRun.version_id)
        .where(FlowRun.patient_id == patient.id)
        .order_by(FlowRun.event_at.desc(), FlowRun.id.desc())).all()
    runs = {run.id: _run_item(run, name, number, tz) for run, name, number in rows}
    if not runs:
        return []
    steps = db.session.scalars(
        select(FlowStep).where(FlowStep.run_id.in_(runs))
        .order_by(FlowStep.run_id, FlowStep.position, FlowStep.id)).all()
    sources = [SOURCE_PREFIX + step.uid for step in steps]
    tasks, messages = _tasks_by_source(sources, tz, now), _messages_by_source(sources)
    for step in steps:
        item = _step_item(step, tasks.get(SOURCE_PREFIX + step.uid, []),
                          messages.get(SOURCE_PREFIX + step.uid, []))
        item.text = step_words(item, tz=tz, now=now, run_reason=runs[step.run_id].end_reason)
        runs[step.run_id].steps.append(item)
    return list(runs.values())


def _run_item(run: FlowRun, flow_name: str, number: int, tz: ZoneInfo) -> TimelineRun:
    item = TimelineRun(
        uid=run.uid, flow_name=flow_name, version_number=number, event_kind=run.event_kind,
        trigger_text=trigger_words(run.event_kind, run.event_data or {}),
        event_at=run.event_at, event_text=due_text(run.event_at, tz), status=run.status,
        end_reason=run.end_reason, ended_at=run.ended_at)
    item.text = run_words(item, tz=tz)
    return item


def _step_item(step: FlowStep, tasks: list[TimelineTask],
               messages: list[TimelineMessage]) -> TimelineStep:
    spec = step.spec or {}
    label = next((text for text in (
        *(task.title for task in tasks), *(message.subject for message in messages),
        spec.get("title"), spec.get("subject"),
        spec.get("item") if step.kind == "staff_task" else None) if text), "")
    return TimelineStep(
        uid=step.uid, position=step.position, kind=step.kind,
        kind_text=STEP_WORDS.get(step.kind, step.kind.replace("_", " ").capitalize()),
        label=str(label), status=step.status, run_at=step.run_at, due_at=step.due_at,
        done_at=step.done_at, outcome=step.outcome, last_error=step.last_error,
        attempts=step.attempts or 0, tasks=tasks, messages=messages)


def _tasks_by_source(sources: list[str], tz: ZoneInfo, now: datetime
                     ) -> dict[str, list[TimelineTask]]:
    """The staff tasks the steps made, by source, assignee loaded in the same query."""
    found: dict[str, list[TimelineTask]] = {}
    if not sources:
        return found
    rows = db.session.scalars(
        select(StaffTask).options(joinedload(StaffTask.assignee))
        .where(StaffTask.source.in_(sources)).order_by(StaffTask.id)).all()
    for task in rows:
        item = TimelineTask(
            uid=task.uid, title=task.title, status=task.status,
            assignee=_assignee_words(task), due_at=task.due_at, done_at=task.done_at,
            end_reason=task.end_reason)
        item.text = task_words(item, tz=tz, now=now)
        found.setdefault(task.source, []).append(item)
    return found


def _messages_by_source(sources: list[str]) -> dict[str, list[TimelineMessage]]:
    """The client messages the steps recorded, by source."""
    found: dict[str, list[TimelineMessage]] = {}
    if not sources:
        return found
    rows = db.session.scalars(select(ClientMessage).where(ClientMessage.source.in_(sources))
                              .order_by(ClientMessage.id)).all()
    for message in rows:
        item = TimelineMessage(
            uid=message.uid, channel=message.channel, subject=message.subject,
            status=message.status, status_detail=message.status_detail,
            created_at=message.created_at)
        item.text = message_words(item)
        found.setdefault(message.source, []).append(item)
    return found


def _assignee_words(task: StaffTask) -> str:
    if task.assignee is not None:
        return task.assignee.name
    if task.assignee_level is not None:
        return f"anyone of level {task.assignee_level}"
    return "anyone"


def trigger_words(kind: str, data: dict) -> str:
    """What started a run, in words ("Order created: Methadone")."""
    words = TRIGGER_WORDS.get(kind, kind.replace("_", " ").capitalize())
    if data.get("order_name"):
        words += f": {data['order_name']}"
    if kind == "value_recorded" and data.get("value") not in (None, ""):
        words += f" ({data['value']})"
    return words


def run_words(run: TimelineRun, *, tz: ZoneInfo) -> str:
    """A run's state in words: running, completed when, or cancelled why."""
    if run.status == RUN_COMPLETED:
        when = f" {due_text(run.ended_at, tz)}" if run.ended_at else ""
        return f"Completed{when}" + (f": {run.end_reason}" if run.end_reason else "")
    if run.status == RUN_CANCELLED:
        return f"Cancelled: {run.end_reason}" if run.end_reason else "Cancelled"
    return "Running"


def step_words(step: TimelineStep, *, tz: ZoneInfo, now: datetime,
               run_reason: str | None = None) -> str:
    """A step's state in words ("Waiting until Mon 7 Dec 09:00", "Done 14:05", …)."""
    if step.status == STEP_DONE:
        return f"Done {_when(step.done_at, tz, now)}" if step.done_at else "Done"
    if step.status == STEP_CANCELLED:
        reason = step.outcome or run_reason
        return f"Cancelled: {reason}" if reason else "Cancelled"
    if step.status == STEP_FAILED:
        return (f"Failed {_times(step.attempts)}: {step.last_error or 'no reason given'}"
                " — a manager can retry it on the Flows page")
    if step.last_error:
        return (f"Tried {_times(step.attempts)}, last: {step.last_error}; trying again "
                f"{_when(step.run_at, tz, now)}")
    if step.run_at <= now:
        return f"About to run (due {due_text(step.run_at, tz)})"
    return f"Waiting until {due_text(step.run_at, tz)}"


def task_words(task: TimelineTask, *, tz: ZoneInfo, now: datetime) -> str:
    """A staff task's state in words: open for whom and when, done when, or cancelled why."""
    if task.status == TASK_DONE:
        return f"Done {_when(task.done_at, tz, now)}" if task.done_at else "Done"
    if task.status == TASK_CANCELLED:
        return f"Cancelled: {task.end_reason}" if task.end_reason else "Cancelled"
    late = "overdue since" if task.due_at <= now else "due"
    return f"Open for {task.assignee}, {late} {due_text(task.due_at, tz)}"


def message_words(message: TimelineMessage) -> str:
    """A client message's channel and state in words ("E-mail: queued")."""
    channel = CHANNEL_WORDS.get(message.channel, message.channel)
    detail = f" ({message.status_detail})" if message.status_detail else ""
    return f"{channel}: {message.status}{detail}"


def _when(value: datetime, tz: ZoneInfo, now: datetime) -> str:
    """The clinic's HH:MM for a time today, else its day and time."""
    if clock.to_local(value, tz).date() == clock.to_local(now, tz).date():
        return clock.to_local(value, tz).strftime("%H:%M")
    return due_text(value, tz)


def _times(count: int) -> str:
    return {0: "0 times", 1: "once", 2: "twice"}.get(count, f"{count} times")
