"""The flows runtime: events become runs and steps (rows), steps are carried out.

`flow_events_evaluate` takes waiting FlowEvents in batches, finds the enabled flows whose
trigger and conditions they meet, and writes one FlowRun per flow and trigger (its key
makes a second evaluation of the same fact a no-op) with its steps, their times computed
from the event's real time. `flow_steps_run_due` carries out the steps whose time has come,
each in a savepoint: a step that fails is tried again after a back-off and, when its tries
are spent, waits for a manager (`steps_failed`, `step_retry`); nothing is dropped.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import joinedload

from ..clinic.selectors import settings_get, settings_zone
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..extensions import db
from ..forms.models import FormEntry, FormTemplate, PatientForm
from ..patients.models import Patient
from ..treatments.models import Order, Task
from .definition import CONDITION_LABELS, OP_LABELS
from .matching import (
    ConditionResult,
    Facts,
    conditions_explain,
    conditions_hold,
    step_times,
    trigger_matches,
    value_out_of_range,
)
from .models import (
    RUN_CANCELLED,
    RUN_COMPLETED,
    RUN_RUNNING,
    STEP_CANCELLED,
    STEP_DONE,
    STEP_FAILED,
    STEP_PENDING,
    Flow,
    FlowEvent,
    FlowRun,
    FlowStep,
    FlowTemplate,
    FlowVersion,
)

log = logging.getLogger(__name__)

BATCH = 1000
STEP_BATCH = 200
LEASE = timedelta(minutes=5)
# A failing step is tried this many times, waiting a little longer each time, then waits
# for a manager on the flows page.
STEP_TRIES = 5
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
           timedelta(minutes=30))
# A flow started by a flow starts at most this deep (the builder refuses cycles; this is
# the runtime's own guard against a loop made by editing two flows in turn).
START_DEPTH = 5


# Claiming rows: one evaluator or runner has them until its lease ends.

def _claim(model, where, order_by, *, now: datetime, limit: int) -> list[int]:
    """Take up to `limit` rows for this worker (commits); their ids."""
    token = str(uuid.uuid4())
    free = or_(model.lease_until.is_(None), model.lease_until < now)
    ids = select(model.id).where(where, free).order_by(*order_by).limit(limit)
    db.session.execute(update(model).where(model.id.in_(ids.scalar_subquery()), where, free)
                       .values(claim=token, lease_until=now + LEASE)
                       .execution_options(synchronize_session=False))
    db.session.commit()
    return list(db.session.scalars(select(model.id).where(model.claim == token)))


# Events → runs and steps.

@dataclass
class _Batch:
    """What evaluating a batch of events needs, read in a handful of queries."""

    flows: dict[str, list[tuple[Flow, FlowVersion]]]
    patients: dict[int, Patient]
    templates: dict[str, FlowTemplate]
    forms: dict[str, str]
    tz: object
    now: datetime
    runs: list[FlowRun] = field(default_factory=list)


def _flows_by_kind() -> dict[str, list[tuple[Flow, FlowVersion]]]:
    out: dict[str, list] = {}
    for flow in db.session.scalars(select(Flow).where(Flow.enabled).options(
            joinedload(Flow.current_version)).order_by(Flow.id)):
        out.setdefault(flow.trigger_kind, []).append((flow, flow.current_version))
    return out


def _templates_used(flows) -> tuple[dict[str, FlowTemplate], dict[str, str]]:
    """The message templates and form names the flows' steps name, by uid."""
    items = {step.get("item") for pairs in flows.values() for _, version in pairs
             for step in version.definition["steps"]}
    templates = {row.uid: row for row in db.session.scalars(
        select(FlowTemplate).where(FlowTemplate.uid.in_(items)))}
    forms = dict(db.session.execute(select(FormTemplate.uid, FormTemplate.name)
                                    .where(FormTemplate.uid.in_(items))).all())
    return templates, forms


def _facts(events: list[FlowEvent], patients: dict[int, Patient], tz) -> dict[int, Facts]:
    """Each event's facts, with what its order, task or form says (a query per kind)."""
    order_uids = {evt.data.get("order") for evt in events if evt.kind == "order_created"}
    orders = {row.uid: row for row in db.session.scalars(
        select(Order).where(Order.uid.in_(order_uids)))} if order_uids else {}
    task_uids = {evt.data.get("task") for evt in events if evt.kind == "value_recorded"}
    task_orders = dict(db.session.execute(
        select(Task.uid, Order).join(Order, Task.order_id == Order.id)
        .where(Task.uid.in_(task_uids))).all()) if task_uids else {}
    form_uids = {evt.data.get("form") for evt in events if evt.kind == "form_finalised"}
    forms = _forms_read(form_uids) if form_uids else {}
    out = {}
    for evt in events:
        facts = Facts(kind=evt.kind, at=evt.at, patient=patients.get(evt.patient_id), tz=tz,
                      value=evt.data.get("value"), flow=evt.data.get("flow"))
        order = orders.get(evt.data.get("order")) or task_orders.get(evt.data.get("task"))
        if order is not None:
            facts.order_name, facts.order_kind = order.name, order.kind
        if evt.kind == "task_overdue":
            facts.order_name, facts.order_kind = evt.data["order_name"], evt.data["order_kind"]
            facts.task_due = datetime.fromisoformat(evt.data["due_at"])
            facts.minutes = int(evt.data["minutes"])
        if evt.kind == "form_finalised":
            facts.form_template, facts.fields = forms.get(evt.data.get("form"), (None, {}))
        out[evt.id] = facts
    return out


def _forms_read(form_uids) -> dict[str, tuple[str, dict]]:
    """Each finalised form's template uid and its values (the latest entry of each field)."""
    out: dict[str, tuple[str, dict]] = {}
    rows = db.session.execute(
        select(PatientForm.uid, FormTemplate.uid, FormEntry.key, FormEntry.value)
        .join(FormTemplate, PatientForm.template_id == FormTemplate.id)
        .outerjoin(FormEntry, FormEntry.form_id == PatientForm.id)
        .where(PatientForm.uid.in_(form_uids)).order_by(FormEntry.id))
    for form_uid, template_uid, key, value in rows:
        _, values = out.setdefault(form_uid, (template_uid, {}))
        if key is not None:
            values[key] = value
    return out


def flow_events_evaluate(*, limit: int = BATCH) -> int:
    """Turn every waiting event into runs and steps; how many events were evaluated."""
    total = 0
    while True:
        now = clock.utcnow()
        ids = _claim(FlowEvent, FlowEvent.processed_at.is_(None), (FlowEvent.id,), now=now,
                     limit=limit)
        if not ids:
            return total
        _evaluate_batch(ids, now)
        db.session.commit()
        total += len(ids)


def _evaluate_batch(ids: list[int], now: datetime) -> None:
    events = list(db.session.scalars(select(FlowEvent).where(FlowEvent.id.in_(ids))
                                     .order_by(FlowEvent.id)))
    flows = _flows_by_kind()
    templates, forms = _templates_used(flows)
    patient_ids = {evt.patient_id for evt in events if evt.patient_id}
    if any(evt.kind == "schedule" for evt in events):
        patient_ids |= set(db.session.scalars(select(Patient.id).where(
            Patient.status == "admitted")))
    patients = {row.id: row for row in db.session.scalars(
        select(Patient).where(Patient.id.in_(patient_ids)))} if patient_ids else {}
    batch = _Batch(flows, patients, templates, forms, settings_zone(), now)
    facts = _facts(events, patients, batch.tz)
    wanted: list[tuple[str, Flow, FlowVersion, Facts, FlowEvent]] = []
    for evt in events:
        try:
            wanted.extend(_event_matches(evt, facts[evt.id], batch))
        except Exception as exc:  # noqa: BLE001 - one bad event must not stop the others
            log.exception("flow event %s could not be evaluated", evt.key)
            evt.error = f"{type(exc).__name__}: {exc}"[:300]
        evt.processed_at, evt.claim, evt.lease_until = now, None, None
    taken = set(db.session.scalars(select(FlowRun.key).where(
        FlowRun.key.in_([key for key, *_ in wanted])))) if wanted else set()
    for key, flow, version, evt_facts, evt in wanted:
        if key in taken:
            continue
        taken.add(key)
        try:
            _run_create(key=key, flow=flow, version=version, facts=evt_facts, batch=batch)
        except Exception as exc:  # noqa: BLE001 - recorded on the event, never dropped
            log.exception("flow %s could not start for %s", flow.uid, evt.key)
            evt.error = f"{flow.name}: {type(exc).__name__}: {exc}"[:300]


def _event_matches(evt: FlowEvent, facts: Facts, batch: _Batch):
    """(run key, flow, version, facts, event) for each flow this event starts."""
    for flow, version in batch.flows.get(evt.kind, ()):
        definition = version.definition
        if not trigger_matches(definition["trigger"], facts, flow_uid=flow.uid):
            continue
        if evt.kind == "schedule" and definition["trigger"].get("scope") == "patients":
            for patient in batch.patients.values():
                if patient.status != "admitted":
                    continue
                each = Facts(kind=facts.kind, at=facts.at, patient=patient, flow=facts.flow,
                             tz=facts.tz)
                if conditions_hold(definition["conditions"], each):
                    yield f"{flow.uid}:{evt.key}:{patient.uid}", flow, version, each, evt
        elif conditions_hold(definition["conditions"], facts):
            yield f"{flow.uid}:{evt.key}", flow, version, facts, evt


def _run_create(*, key: str, flow: Flow, version: FlowVersion, facts: Facts, batch: _Batch,
                parent: FlowRun | None = None) -> FlowRun:
    """A run and its steps (templates copied in: a later edit changes later runs only)."""
    steps = version.definition["steps"]
    # Every step's times first: a rule that cannot resolve leaves no half-made run.
    times_of = [step_times(step, facts, now=batch.now, tz=batch.tz) for step in steps]
    run = FlowRun(uid=str(uuid.uuid4()), key=key, flow_id=flow.id, version_id=version.id,
                  patient_id=facts.patient.id if facts.patient is not None else None,
                  event_kind=facts.kind, event_at=facts.at, event_data=facts.summary(),
                  parent_run_id=parent.id if parent is not None else None,
                  status=RUN_RUNNING, started_at=batch.now)
    db.session.add(run)
    for position, (step, times) in enumerate(zip(steps, times_of, strict=True)):
        spec = dict(step, flow_name=flow.name)
        template = batch.templates.get(step.get("item"))
        if template is not None:
            spec["subject"], spec["body"] = template.subject, template.body
            spec["clinical_in_sms"], spec["urgent"] = template.clinical_in_sms, template.urgent
        if step["type"] == "send_form":
            spec["form_name"] = batch.forms.get(step["item"])
        if times.remind_at is not None:
            spec["remind_at"] = times.remind_at.isoformat()
        db.session.add(FlowStep(uid=str(uuid.uuid4()), run=run, position=position,
                                kind=step["type"], spec=spec, status=STEP_PENDING,
                                run_at=times.run_at, due_at=times.due_at,
                                cancel_on_discharge=bool(step.get("cancel_on_discharge"))))
    _cancel_if_gone(run, facts, batch.now)
    batch.runs.append(run)
    return run


def _cancel_if_gone(run: FlowRun, facts: Facts, now: datetime) -> None:
    """A run that starts after its patient left (an admission and a discharge synced
    together after an outage) never does what no longer applies after discharge."""
    patient = facts.patient
    if patient is None or patient.status != "discharged" or facts.kind == "patient_discharged":
        return
    for step in run.steps:
        if step.cancel_on_discharge:
            step.status, step.done_at = STEP_CANCELLED, now
            step.outcome = "Not done: the patient was already discharged"
    if all(step.status == STEP_CANCELLED for step in run.steps):
        run.status, run.ended_at, run.end_reason = RUN_CANCELLED, now, "Patient discharged"


# The dry run.

def condition_label(condition: dict) -> str:
    """A condition in words: 'Species is dog', 'Form field “temp” is more than 39.5'."""
    name = condition["field"]
    if name.startswith("form_field:"):
        what = f"Form field “{name.split(':', 1)[1]}”"
    else:
        what = CONDITION_LABELS.get(name, name)
    return f"{what} {OP_LABELS.get(condition['op'], condition['op'])} {condition['value']}"


@dataclass(frozen=True)
class PlannedStep:
    """One step as the dry run shows it: what, when, for whom, and its words."""

    position: int
    kind: str
    label: str
    run_at: datetime | None
    due_at: datetime | None
    remind_at: datetime | None
    responsible_label: str
    text: str
    subject: str
    error: str | None


@dataclass
class Plan:
    """What a flow would do for a patient at a time; nothing is written to make it."""

    matched: bool
    conditions: list[ConditionResult]
    steps: list[PlannedStep]


def _trigger_explain(trigger: dict, facts: Facts) -> list[ConditionResult]:
    """The trigger's own filters the dry run was given something to test (an order's name,
    a recorded value), judged as the runtime judges them."""
    out = []
    wanted = trigger.get("order")
    if wanted and facts.order_name is not None:
        out.append(ConditionResult(f"Order's name contains “{wanted}”",
                                   wanted.lower() in facts.order_name.lower(),
                                   f"found: {facts.order_name}"))
    if trigger["kind"] == "value_recorded" and facts.value is not None:
        limits = " or ".join(f"{word} {trigger[key]}" for key, word in
                             (("above", "above"), ("below", "below")) if trigger.get(key))
        out.append(ConditionResult(f"Value is {limits}", value_out_of_range(trigger, facts.value),
                                   f"found: {facts.value}"))
    return out


def flow_plan(*, version, patient, at: datetime, event_kind: str | None = None,
              event_data: dict | None = None) -> Plan:
    """The dry run: whether the flow would start for `patient` on an event at `at`, every
    step with its times and rendered words. Reads only."""
    from .steps import step_preview  # the step actions' own words (steps import this module)

    definition = version.definition if isinstance(version, FlowVersion) else version
    data = event_data or {}
    kind = event_kind or definition["trigger"]["kind"]
    tz = settings_zone()
    facts = Facts(kind=kind, at=clock.as_utc(at), patient=patient, value=data.get("value"),
                  order_name=data.get("order_name"), order_kind=data.get("order_kind"),
                  fields=data.get("fields") or {}, tz=tz)
    if kind == "task_overdue":
        facts.minutes = definition["trigger"].get("minutes")
        facts.task_due = facts.at - timedelta(minutes=int(facts.minutes or 0))
    conditions = _trigger_explain(definition["trigger"], facts) + conditions_explain(
        definition["conditions"], facts, condition_label)
    steps = [step_preview(step, position, facts, now=facts.at, tz=tz)
             for position, step in enumerate(definition["steps"])]
    return Plan(matched=all(result.ok for result in conditions), conditions=conditions,
                steps=steps)


# Steps.

def flow_steps_run_due(*, limit: int = STEP_BATCH) -> dict:
    """Carry out every step whose time has come; counts of done and failed."""
    from .steps import step_execute

    counts = {"done": 0, "failed": 0}
    settings = settings_get()
    while True:
        now = clock.utcnow()
        ids = _claim(FlowStep, and_(FlowStep.status == STEP_PENDING, FlowStep.run_at <= now),
                     (FlowStep.run_at, FlowStep.id), now=now, limit=limit)
        if not ids:
            return counts
        # Locked and read afresh: a discharge cancelling these steps meanwhile wins or waits.
        steps = db.session.scalars(select(FlowStep).where(
            FlowStep.id.in_(ids), FlowStep.status == STEP_PENDING).options(
            joinedload(FlowStep.run).joinedload(FlowRun.patient),
            joinedload(FlowStep.run).joinedload(FlowRun.version),
            joinedload(FlowStep.run).selectinload(FlowRun.steps)).order_by(FlowStep.id)
            .with_for_update(of=FlowStep).execution_options(populate_existing=True)).all()
        for step in steps:
            done = _step_try(step, lambda s, now: step_execute(s, now=now, settings=settings),
                             now)
            counts["done" if done else "failed"] += 1
        db.session.flush()
        for run in {step.run_id: step.run for step in steps}.values():
            run_settle(run, now=now)
        db.session.commit()


def _step_try(step: FlowStep, execute, now: datetime) -> bool:
    """Carry out one step in a savepoint; on failure, note why and when to try again."""
    pending = db.session.info.setdefault("pending_events", [])
    recorded = len(pending)
    step.attempts += 1
    step.claim, step.lease_until = None, None
    try:
        with db.session.begin_nested():
            step.outcome = execute(step, now=now)[:300]
    except Exception as exc:  # noqa: BLE001 - every failure is retried or shown, never lost
        del pending[recorded:]  # what the failed step recorded did not happen
        if not isinstance(exc, DomainError):
            log.exception("flow step %s failed", step.uid)
        step.last_error = _error_words(exc)
        if step.attempts >= STEP_TRIES:
            step.status = STEP_FAILED
            event_record(db.session, "flows.step_failed", step=step.uid)
        else:
            step.run_at = now + BACKOFF[min(step.attempts, len(BACKOFF)) - 1]
        return False
    step.status, step.done_at, step.last_error = STEP_DONE, now, None
    return True


def _error_words(exc: Exception) -> str:
    """Why a step failed, for the flows page: a DomainError's sentence; of a database
    error its kind only (its text holds the SQL, and the log has the rest)."""
    if isinstance(exc, DomainError):
        return exc.message[:500]
    if isinstance(exc, DBAPIError):
        return f"Database error ({type(exc.orig).__name__}); the server's log has details."
    return f"{type(exc).__name__}: {exc}"[:500]


def run_settle(run: FlowRun, *, now: datetime) -> None:
    """Mark a run completed once none of its steps waits and none of its tasks is open."""
    from ..inbox.models import TASK_OPEN, StaffTask

    if run.status != RUN_RUNNING:
        return
    if any(step.status in (STEP_PENDING, STEP_FAILED) for step in run.steps):
        return
    sources = [f"flow_step:{step.uid}" for step in run.steps]
    open_tasks = db.session.scalar(select(StaffTask.id).where(
        StaffTask.source.in_(sources), StaffTask.status == TASK_OPEN).limit(1))
    if open_tasks is None:
        run.status, run.ended_at = RUN_COMPLETED, now


def run_end(run: FlowRun, *, status: str, reason: str, now: datetime,
            only_discharge: bool = False) -> int:
    """Cancel what a run still has to do (its waiting steps and open tasks); with
    `only_discharge`, just what is marked "no longer applicable after discharge". The run
    ends when nothing of it is left; how many things were cancelled."""
    from ..inbox.models import TASK_OPEN, StaffTask
    from ..inbox.services import staff_task_cancel

    cancelled = 0
    for step in run.steps:
        if only_discharge and not step.cancel_on_discharge:
            continue
        if step.status in (STEP_PENDING, STEP_FAILED):
            step.status, step.outcome, step.done_at = STEP_CANCELLED, reason[:300], now
            cancelled += 1
        for task in db.session.scalars(select(StaffTask).where(
                StaffTask.source == f"flow_step:{step.uid}", StaffTask.status == TASK_OPEN)):
            staff_task_cancel(task=task, reason=reason)
            cancelled += 1
    if not only_discharge:
        run.status, run.ended_at, run.end_reason = status, now, reason[:200]
    else:
        run_settle(run, now=now)
        if run.status == RUN_COMPLETED and cancelled:
            run.status, run.end_reason = RUN_CANCELLED, reason[:200]
    return cancelled


def runs_end_at_discharge(*, patient, at=None, **_) -> None:
    """What is no longer applicable after discharge ends with it (same transaction)."""
    now = clock.utcnow()
    # The runs' steps locked and read afresh: a worker carrying one out finishes first.
    db.session.scalars(select(FlowStep).join(FlowRun).where(
        FlowRun.patient_id == patient.id, FlowRun.status == RUN_RUNNING)
        .with_for_update(of=FlowStep).execution_options(populate_existing=True)).all()
    for run in db.session.scalars(select(FlowRun).where(
            FlowRun.patient_id == patient.id, FlowRun.status == RUN_RUNNING)):
        run_end(run, status=RUN_CANCELLED, reason="Patient discharged", now=now,
                only_discharge=True)


def run_complete_by_task(*, task, user, **_) -> None:
    """A task marked "completing this task completes the whole flow" ends its run: what
    else it had to do is no longer needed (same transaction as the completion)."""
    if not (task.source or "").startswith("flow_step:"):
        return
    step = db.session.scalar(select(FlowStep).where(
        FlowStep.uid == task.source.split(":", 1)[1]).options(joinedload(FlowStep.run)))
    if step is None:
        return
    now = clock.utcnow()
    if step.spec.get("completes_flow") and step.run.status == RUN_RUNNING:
        run_end(step.run, status=RUN_COMPLETED, now=now,
                reason=f"Completed with “{task.title}” by {user.name}")
    else:
        db.session.flush()
        run_settle(step.run, now=now)


def steps_failed() -> list[FlowStep]:
    """Steps whose tries are spent, waiting for a manager (oldest first)."""
    return list(db.session.scalars(select(FlowStep).where(FlowStep.status == STEP_FAILED)
                                   .options(joinedload(FlowStep.run).joinedload(FlowRun.flow),
                                            joinedload(FlowStep.run).joinedload(
                                                FlowRun.patient))
                                   .order_by(FlowStep.run_at, FlowStep.id)))


def step_retry(*, step: FlowStep, user) -> None:
    """A manager sends a failed step round again (now, with fresh tries)."""
    permission_check(user, LEVEL_MANAGER, "retry flow steps")
    if step.status != STEP_FAILED:
        raise DomainError("not_failed", "That step is not waiting for a retry.")
    step.status, step.attempts, step.run_at = STEP_PENDING, 0, clock.utcnow()
    step.claim = step.lease_until = None
    audit_record(action="flow.step_retry", entity="flow_step", entity_uid=step.uid, user=user)
    event_record(db.session, "flows.step_retry", step=step.uid)


def start_flow_child(*, step: FlowStep, now: datetime) -> str:
    """Start the flow a "start flow" step names, for the same patient; its words."""
    run = step.run
    flow = db.session.scalar(select(Flow).where(Flow.uid == step.spec["item"]).options(
        joinedload(Flow.current_version)))
    if flow is None or flow.current_version is None:
        raise DomainError("flow_missing", "The flow this step starts no longer exists.")
    if not flow.enabled:
        return f"Did not start “{flow.name}”: it is switched off"
    depth, parent = 0, run
    while parent.parent_run_id is not None and depth <= START_DEPTH:
        parent, depth = db.session.get(FlowRun, parent.parent_run_id), depth + 1
    if depth >= START_DEPTH:
        raise DomainError("flow_loop", "Flows started by flows went too deep (a loop?).")
    facts = Facts(kind="flow_started", at=now, patient=run.patient, tz=settings_zone())
    if not conditions_hold(flow.current_version.definition["conditions"], facts):
        return f"Did not start “{flow.name}”: its conditions were not met"
    templates, forms = _templates_used({flow.trigger_kind: [(flow, flow.current_version)]})
    batch = _Batch({}, {}, templates, forms, tz=settings_zone(), now=now)
    _run_create(key=f"{flow.uid}:started_by:{step.uid}", flow=flow,
                version=flow.current_version, facts=facts, batch=batch, parent=run)
    return f"Started “{flow.name}”"

