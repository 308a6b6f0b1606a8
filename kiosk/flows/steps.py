"""What each kind of step does, once for real (`step_execute`) and once in words for the
dry run (`step_preview`), from the same pieces: who is responsible, the rendered text."""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..clinic.selectors import settings_zone
from ..core.clock import moment_text
from ..core.errors import DomainError
from ..extensions import db
from ..forms.models import FormTemplate
from ..inbox.services import staff_message_send, staff_task_create
from ..messaging.services import client_message_queue
from ..staff.levels import level_name
from ..staff.models import User
from ..treatments.services import note_add
from .definition import STEP_TYPE_LABELS
from .engine import PlannedStep, start_flow_child
from .matching import Facts, step_times
from .merge import merge_context, template_empty_fields, template_render
from .models import FlowStep, FlowTemplate

VET_LEVEL = 5  # whom a patient's task goes to when its doctor has no account here
_TITLE = re.compile(r"^(dr\.?|doctor)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Responsible:
    """Whom a task or message goes to: one person, or everyone of a level."""

    user: User | None
    level: int | None
    label: str


def _name_key(name: str | None) -> str:
    return _TITLE.sub("", (name or "").strip()).casefold()


def responsible_resolve(value: str, patient) -> Responsible:
    """"doctor" (the patient's vet, by name; the vets when nobody here has that name),
    "user:<uid>" or "level:<n>"."""
    if value == "doctor":
        wanted = _name_key(getattr(patient, "doctor", None))
        if wanted:
            for user in db.session.scalars(select(User).where(
                    User.active, func.lower(User.name).contains(wanted.split()[-1]))):
                if _name_key(user.name) == wanted:
                    return Responsible(user, None, user.name)
        return Responsible(None, VET_LEVEL, f"{level_name(VET_LEVEL)}s (the patient's vet "
                                            "has no account here)")
    kind, _, ref = value.partition(":")
    if kind == "user":
        user = db.session.scalar(select(User).where(User.uid == ref))
        if user is None or not user.active:
            raise DomainError("user_gone", "The person this step is for no longer has an "
                              "active account; choose someone else in the flow.")
        return Responsible(user, None, user.name)
    return Responsible(None, int(ref), f"every {level_name(int(ref))}")


def _context(step: FlowStep, facts: Facts, *, task_due: datetime | None, settings) -> dict:
    return merge_context(patient=facts.patient, event_kind=facts.kind, event_at=facts.at,
                         event_data=facts.summary(), flow_name=step.spec.get("flow_name", ""),
                         task_due=task_due, settings=settings)


def _run_facts(step: FlowStep) -> Facts:
    run = step.run
    data = run.event_data or {}
    return Facts(kind=run.event_kind, at=run.event_at, patient=run.patient,
                 value=data.get("value"), order_name=data.get("order_name"),
                 order_kind=data.get("order_kind"))


def step_execute(step: FlowStep, *, now: datetime, settings) -> str:
    """Do what the step says (idempotent on the step: its key); what was done, in words.
    `settings`: the clinic's (its zone words the times)."""
    spec, run, key = step.spec, step.run, f"flow_step:{step.uid}"
    facts = _run_facts(step)
    context = _context(step, facts, task_due=step.due_at, settings=settings)
    tz = settings_zone(settings)
    kind = step.kind
    if kind in ("patient_note", "send_form", "client_message") and run.patient is None:
        raise DomainError("no_patient", "This step needs a patient; the flow ran for the clinic.")
    if kind == "staff_task":
        who = responsible_resolve(spec["responsible"], run.patient)
        title = template_render(spec["item"], context)[:200]
        remind = spec.get("remind_at")
        staff_task_create(key=key, title=title, due_at=step.due_at, patient=run.patient,
                          assignee=who.user, assignee_level=who.level, source=key,
                          detail=f"From the flow “{spec.get('flow_name', '')}”.",
                          remind_at=datetime.fromisoformat(remind) if remind else None)
        return f"Task “{title}” for {who.label}, due {moment_text(step.due_at, tz)}"
    if kind == "staff_message":
        who = responsible_resolve(spec["responsible"], run.patient)
        subject = template_render(spec.get("subject") or spec.get("flow_name", ""), context)
        staff_message_send(key=key, subject=subject[:200], to_user=who.user,
                           to_level=who.level, patient=run.patient, source=key,
                           body=template_render(spec.get("body") or "", context))
        return f"Message “{subject[:80]}” to {who.label}"
    if kind == "patient_note":
        note_add(patient=run.patient, user=run.version.published_by,
                 text=template_render(spec.get("body") or "", context))
        return "Note written on the patient's record"
    if kind in ("send_form", "client_message"):
        return _client_message(step, context, key)
    if kind == "start_flow":
        return start_flow_child(step=step, now=now)
    raise DomainError("step_unknown", f"This version does not know the step “{kind}”.")


def _client_message(step: FlowStep, context: dict, key: str) -> str:
    spec, run = step.spec, step.run
    form = None
    empty: list[str] = []
    if step.kind == "send_form":
        form = db.session.scalar(select(FormTemplate).where(FormTemplate.uid == spec["item"]))
        if form is None or not form.active:
            raise DomainError("form_gone", "The form this step sends is no longer in use.")
        body = f"Please fill in “{form.name}” for {run.patient.name}."
        subject = form.name
    else:
        body = template_render(spec.get("body") or "", context)
        subject = template_render(spec.get("subject") or "", context)[:200] or None
        empty = sorted(set(template_empty_fields(spec.get("body") or "", context))
                       | set(template_empty_fields(spec.get("subject") or "", context)))
    message = client_message_queue(
        key=key, patient=run.patient, channel=spec["channel"], body=body, subject=subject,
        form_template=form, source=key, clinical_ok=bool(spec.get("clinical_in_sms")),
        urgent=bool(spec.get("urgent")), empty_fields=empty)
    what = f"form “{form.name}”" if form else "message"
    if message.status_detail and message.status == "not_sent":
        return f"Client {what} not sent: {message.status_detail}"
    return f"Client {what} queued ({message.channel})"


def step_preview(step: dict, position: int, facts: Facts, *, now: datetime, tz
                 ) -> PlannedStep:
    """What a step would do for these facts, in words (the dry run: nothing written)."""
    label = STEP_TYPE_LABELS.get(step["type"], step["type"])
    run_at = due_at = remind_at = None
    who, text, subject, error = "", "", "", None
    try:
        times = step_times(step, facts, now=now, tz=tz)
        run_at, due_at, remind_at = times.run_at, times.due_at, times.remind_at
        if step.get("responsible"):
            who = responsible_resolve(step["responsible"], facts.patient).label
        text, subject = _preview_words(step, facts, due_at)
    except (DomainError, LookupError, ValueError) as exc:
        error = exc.message if isinstance(exc, DomainError) else str(exc)
    return PlannedStep(position=position, kind=step["type"], label=label, run_at=run_at,
                       due_at=due_at, remind_at=remind_at, responsible_label=who, text=text,
                       subject=subject, error=error)


def _preview_words(step: dict, facts: Facts, due_at) -> tuple[str, str]:
    context = merge_context(patient=facts.patient, event_kind=facts.kind, event_at=facts.at,
                            event_data=facts.summary(), flow_name="", task_due=due_at)
    kind, item = step["type"], step.get("item")
    if kind == "staff_task":
        return template_render(item, context), ""
    if kind in ("staff_message", "patient_note", "client_message"):
        template = db.session.scalar(select(FlowTemplate).where(FlowTemplate.uid == item))
        if template is None:
            return "", ""
        return (template_render(template.body, context),
                template_render(template.subject or "", context))
    if kind == "send_form":
        form = db.session.scalar(select(FormTemplate).where(FormTemplate.uid == item))
        return (f"Send “{form.name if form else '?'}” by {step.get('channel')}", "")
    if kind == "start_flow":
        from .models import Flow

        flow = db.session.scalar(select(Flow).where(Flow.uid == item))
        return (f"Start “{flow.name if flow else '?'}”", "")
    return "", ""
