"""A flow's definition as the builder sends it, checked and normalised (spec: the flow
definition), and the catalogues of triggers, conditions and steps in words for the pages.

`definition_clean` is the one check: the builder's form, a dry run of an unsaved draft and
`flow_save` all go through it, so a definition that is stored can always run.
"""

import re
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from ..core.errors import DomainError
from ..core.validate import HHMM, int_optional, text_optional
from ..extensions import db
from ..forms.models import FormTemplate
from ..messaging.services import CHANNEL_CHOICES
from ..patients.models import SEXES, SPECIES
from ..staff.models import User
from ..treatments.models import ORDER_KINDS
from .due import REMIND_UNITS, UNITS
from .merge import template_check
from .models import Flow, FlowTemplate

TRIGGER_LABELS = {
    "patient_admitted": "A patient is admitted",
    "order_created": "An order is created",
    "task_overdue": "A task is overdue",
    "form_finalised": "A form is finalised",
    "anaesthesia_finalised": "An anaesthesia sheet is finalised",
    "patient_discharged": "A patient is discharged",
    "value_recorded": "A value is recorded out of range",
    "schedule": "On a schedule",
    "flow_started": "Another flow starts it",
}
TRIGGERS = tuple(TRIGGER_LABELS)
ORDER_TRIGGERS = ("order_created", "task_overdue", "value_recorded")
CONDITION_LABELS = {
    "species": "Species", "ward": "Ward", "sex": "Sex", "breed": "Breed",
    "age_years": "Age (years)", "weight_kg": "Weight (kg)", "doctor": "Doctor",
    "order_kind": "Order kind", "order_name": "Order name", "value": "Value recorded",
    "form_field": "A field of the form (its key)",
}
FORM_FIELD = "form_field"
OP_LABELS = {"eq": "is", "ne": "is not", "contains": "contains", "gt": "is more than",
             "ge": "is at least", "lt": "is less than", "le": "is at most"}
NUMERIC_OPS = ("gt", "ge", "lt", "le")
NUMERIC_FIELDS = ("age_years", "weight_kg")
# Fields whose value may be text or a number (a recorded value, a form's field).
MIXED_FIELDS = ("value", FORM_FIELD)
CATEGORY_LABELS = {"task": "Task for staff", "smartflow": "Smart flow action"}
STEP_TYPE_LABELS = {
    "staff_task": "Create a staff task",
    "staff_message": "Send a message to staff",
    "patient_note": "Add a note to the patient's record",
    "send_form": "Send a form to the client",
    "client_message": "Send a message to the client",
    "start_flow": "Start another flow",
}
STEP_TYPES = {"task": ("staff_task",),
              "smartflow": ("staff_message", "patient_note", "send_form", "client_message",
                            "start_flow")}
TEMPLATE_STEPS = ("staff_message", "patient_note", "client_message")
RESPONSIBLE_STEPS = ("staff_task", "staff_message")
CHANNEL_STEPS = ("client_message", "send_form")
PATIENT_STEPS = ("patient_note", "send_form", "client_message")
ANCHOR_LABELS = {"event": "the event", "admitted": "admission", "discharged": "discharge",
                 "task_due": "the overdue task's due time"}
UNIT_LABELS = {unit: unit for unit in UNITS}
WEEKEND_LABELS = {"keep": "Leave it on the weekend", "friday": "Move it to the Friday before",
                  "monday": "Move it to the Monday after"}
_CHANNEL_WORDS = {"email": "E-mail", "sms": "Text message (SMS)", "voice": "Voice call",
                  "portal": "Client portal", "preferred": "The owner's preferred way"}
CHANNEL_LABELS = {channel: _CHANNEL_WORDS.get(channel, channel) for channel in CHANNEL_CHOICES}
EVERY_LABELS = {"daily": "Every day", "weekly": "Every week, on chosen days",
                "days": "Every N days"}
WEEKDAY_LABELS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                  "Sunday")
SCOPE_LABELS = {"patients": "Once for each admitted patient matching the conditions",
                "clinic": "Once for the clinic (no patient)"}
MAX_CONDITIONS, MAX_STEPS = 20, 30
MAX_DUE_AMOUNT = 100_000
UID_TEXT = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _error(field: str, message: str, code: str = "invalid_definition") -> DomainError:
    return DomainError(code, message, field=field)


def _choice(value, options, field: str, what: str) -> str:
    """One of `options` (by key), or an error naming the field."""
    if value is not None and not isinstance(value, str):
        raise _error(field, f"Choose {what} from the list.", "bad_choice")
    text = (value or "").strip()
    if not text:
        raise _error(field, f"Choose {what}.", "required")
    if text not in options:
        raise _error(field, f"“{text}” is not {what} this builder knows.", "bad_choice")
    return text


def _int(value, field: str, label: str, low: int, high: int, *, required: bool = True):
    number = int_optional(value, field, label, low, high)
    if number is None and required:
        raise _error(field, f"{label} is required.", "required")
    return number


def _decimal(value, field: str, label: str) -> str | None:
    """Decimal text ("39.5"), or None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or isinstance(value, bool):
        raise _error(field, f"{label} must be a number, e.g. 39.5.", "not_a_number")
    return f"{number.normalize():f}"


def flag(value) -> bool:
    """A yes/no from a form or JSON: True, "1", "on", "true" or "yes"."""
    return value is True or (isinstance(value, str) and value.strip().lower() in (
        "1", "on", "true", "yes"))


def _uid_text(value, field: str, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise _error(field, f"Choose {what}.", "required")
    if not UID_TEXT.match(text):
        raise _error(field, f"There is no {what} with that id.", "not_found")
    return text


# The trigger

def _trigger_order(raw: dict, out: dict) -> None:
    out["order"] = text_optional(raw.get("order"), "trigger-order", "The order's name", 120)


def _trigger_overdue(raw: dict, out: dict) -> None:
    out["minutes"] = _int(raw.get("minutes"), "trigger-minutes", "Overdue by (minutes)",
                          1, 10080)
    _trigger_order(raw, out)


def _trigger_form(raw: dict, out: dict) -> None:
    uid = raw.get("form")
    if uid is None or (isinstance(uid, str) and not uid.strip()):
        out["form"] = None
        return
    uid = _uid_text(uid, "trigger-form", "form")
    if db.session.scalar(select(FormTemplate.id).where(
            FormTemplate.uid == uid, FormTemplate.active.is_(True))) is None:
        raise _error("trigger-form", "There is no form in use with that id.", "not_found")
    out["form"] = uid


def _trigger_value(raw: dict, out: dict) -> None:
    _trigger_order(raw, out)
    out["above"] = _decimal(raw.get("above"), "trigger-above", "Above")
    out["below"] = _decimal(raw.get("below"), "trigger-below", "Below")
    if out["above"] is None and out["below"] is None:
        raise _error("trigger-above", "Give the value it must be above, below, or both.",
                     "required")


def _trigger_schedule(raw: dict, out: dict) -> None:
    out["every"] = _choice(raw.get("every"), EVERY_LABELS, "trigger-every", "how often")
    if out["every"] == "days":
        out["days"] = _int(raw.get("days"), "trigger-days", "Every N days", 1, 365)
    if out["every"] == "weekly":
        days = raw.get("weekdays") or []
        days = [days] if isinstance(days, str | int) else days
        try:
            picked = sorted({int(str(d).strip()) for d in days if str(d).strip()})
        except ValueError:
            picked = [-1]
        if not picked or any(not 0 <= d <= 6 for d in picked):
            raise _error("trigger-weekdays", "Tick the days of the week it runs on.",
                         "required")
        out["weekdays"] = picked
    time = (raw.get("time") or "").strip() if isinstance(raw.get("time"), str) else ""
    if not HHMM.match(time):
        raise _error("trigger-time", "Give the time of day it runs, e.g. 08:00.", "bad_time")
    out["time"] = time
    out["scope"] = _choice(raw.get("scope"), SCOPE_LABELS, "trigger-scope", "who it runs for")


_TRIGGER_PARAMS = {"order_created": _trigger_order, "task_overdue": _trigger_overdue,
                   "form_finalised": _trigger_form, "value_recorded": _trigger_value,
                   "schedule": _trigger_schedule}


def _trigger(raw) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    kind = _choice(raw.get("kind"), TRIGGER_LABELS, "trigger-kind", "what starts the flow")
    out = {"kind": kind}
    if kind in _TRIGGER_PARAMS:
        _TRIGGER_PARAMS[kind](raw, out)
    return out


def trigger_has_patient(trigger: dict) -> bool:
    """Whether runs of this trigger are for a patient (all but a clinic-wide schedule)."""
    return not (trigger["kind"] == "schedule" and trigger.get("scope") == "clinic")


# Conditions

def _condition_field(raw, trigger: dict, field: str) -> str:
    text = raw.strip() if isinstance(raw, str) else ""
    if text.startswith(FORM_FIELD + ":"):
        key = text.split(":", 1)[1].strip()
        if not re.fullmatch(r"[a-z0-9_]{1,40}", key):
            raise _error(field, "Give the form field's key (letters, digits and _).")
        if trigger["kind"] != "form_finalised":
            raise _error(field, "A form's field can only be tested when a form starts the flow.")
        return f"{FORM_FIELD}:{key}"
    name = _choice(text, {k: v for k, v in CONDITION_LABELS.items() if k != FORM_FIELD},
                   field, "a field to test")
    if name in ("order_kind", "order_name") and trigger["kind"] not in ORDER_TRIGGERS:
        raise _error(field, "The order can only be tested when an order starts the flow.")
    if name == "value" and trigger["kind"] != "value_recorded":
        raise _error(field, "The value can only be tested when a recorded value starts the flow.")
    if not trigger_has_patient(trigger):
        raise _error(field, "A flow for the whole clinic has no patient to test.")
    return name


def _condition(raw, index: int, trigger: dict) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    prefix = f"conditions-{index}-"
    field = _condition_field(raw.get("field"), trigger, prefix + "field")
    kind = field.split(":")[0]
    op = _choice(raw.get("op"), OP_LABELS, prefix + "op", "a comparison")
    if kind in NUMERIC_FIELDS and op == "contains":
        raise _error(prefix + "op", f"{CONDITION_LABELS[kind]} is a number: compare it.")
    if op in NUMERIC_OPS and kind not in NUMERIC_FIELDS + MIXED_FIELDS:
        raise _error(prefix + "op", f"{CONDITION_LABELS[kind]} is not a number: use is, "
                                    "is not or contains.")
    value = text_optional(raw.get("value"), prefix + "value", "The value", 120)
    if value is None:
        raise _error(prefix + "value", "Give the value to compare with.", "required")
    if kind in NUMERIC_FIELDS or op in NUMERIC_OPS:
        value = _decimal(value, prefix + "value", "The value")
    elif op != "contains":
        value = _known_value(kind, value, prefix + "value")
    return {"field": field, "op": op, "value": value}


def _known_value(kind: str, value: str, field: str) -> str:
    """Species, sex and order kind are codes: a value the clinic never stores never matches."""
    options = {"species": SPECIES, "sex": SEXES, "order_kind": ORDER_KINDS}.get(kind)
    if options is None:
        return value
    code = value.upper() if kind == "sex" else value.lower()
    if code not in options:
        raise _error(field, f"“{value}” is not one of: {', '.join(options)}.", "bad_choice")
    return code


# Steps

def _step_item(step_type: str, raw, field: str, *, position: int, flow_uid: str | None,
               has_patient: bool = True):
    """The step's item: a task's name (merge fields checked), or the uid of an enabled
    template, a form in use, or another flow."""
    if step_type == "staff_task":
        name = text_optional(raw, field, "The task's name", 200)
        if name is None:
            raise _error(field, "Give the task's name.", "required")
        template_check(name, field=field, label=f"Step {position}'s task name")
        return name
    if step_type in TEMPLATE_STEPS:
        uid = _uid_text(raw, field, "template")
        template = db.session.scalar(select(FlowTemplate).where(
            FlowTemplate.uid == uid, FlowTemplate.enabled.is_(True)))
        if template is None:
            raise _error(field, "There is no enabled template with that id.", "not_found")
        for part in ("subject", "body"):
            template_check(getattr(template, part) or "", field=field,
                           label=f"Template “{template.name}” ({part})")
        return uid
    if step_type == "send_form":
        uid = _uid_text(raw, field, "form")
        if db.session.scalar(select(FormTemplate.id).where(
                FormTemplate.uid == uid, FormTemplate.active.is_(True))) is None:
            raise _error(field, "There is no form in use with that id.", "not_found")
        return uid
    uid = _uid_text(raw, field, "flow")
    if flow_uid is not None and uid == flow_uid:
        raise _error(field, "A flow cannot start itself.", "flow_cycle")
    flow = db.session.scalar(select(Flow).where(Flow.uid == uid))
    if flow is None:
        raise _error(field, "There is no flow with that id.", "not_found")
    if not has_patient and flow.current_version is not None and \
            _needs_patient(flow.current_version.definition):
        raise _error(field, f"“{flow.name}” works on a patient, and this flow runs for the "
                            "whole clinic: it could never start.", "needs_patient")
    return uid


def _needs_patient(definition: dict) -> bool:
    """Whether a flow's steps need a patient (patient steps, the patient's doctor, a time
    counted from the patient's stay): it cannot be started by a clinic-wide schedule."""
    return any(step["type"] in PATIENT_STEPS or step.get("responsible") == "doctor"
               or (step.get("due") or {}).get("after", "event") != "event"
               for step in definition.get("steps", []))


def _responsible(raw, field: str, trigger: dict) -> str:
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise _error(field, "Choose who is responsible.", "required")
    if text == "doctor":
        if not trigger_has_patient(trigger):
            raise _error(field, "A flow for the whole clinic has no patient, so no doctor: "
                                "choose a person or a level.")
        return text
    kind, _, rest = text.partition(":")
    if kind == "level" and rest in ("1", "2", "3", "4", "5", "6"):
        return text
    if kind == "user" and rest and db.session.scalar(select(User.id).where(
            User.uid == rest, User.active.is_(True))) is not None:
        return text
    raise _error(field, "Choose the doctor, a level (1–6) or a member of staff who is "
                        "still active.", "bad_choice")


def anchors_for(trigger: dict) -> tuple[str, ...]:
    """The anchors a step's due date may count from under this trigger (spec: which
    anchors resolve for which trigger)."""
    out = ["event"]
    if trigger_has_patient(trigger):
        out.append("admitted")
    if trigger["kind"] == "patient_discharged":
        out.append("discharged")
    if trigger["kind"] == "task_overdue":
        out.append("task_due")
    return tuple(out)


def _due(raw, prefix: str, trigger: dict) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    amount = _int(raw.get("amount"), prefix + "due-amount", "The amount", 0, MAX_DUE_AMOUNT)
    unit = _choice(raw.get("unit"), UNIT_LABELS, prefix + "due-unit", "a unit")
    after = _choice(raw.get("after"), ANCHOR_LABELS, prefix + "due-after",
                    "what it counts from")
    if after not in anchors_for(trigger):
        raise _error(prefix + "due-after",
                     f"“After {ANCHOR_LABELS[after]}” cannot be worked out when the flow "
                     f"starts with “{TRIGGER_LABELS[trigger['kind']]}”.", "bad_anchor")
    weekend = _choice(raw.get("weekend") or "keep", WEEKEND_LABELS, prefix + "due-weekend",
                      "a weekend rule")
    return {"amount": amount, "unit": unit, "after": after, "weekend": weekend}


def _remind(raw, prefix: str) -> dict | None:
    raw = raw if isinstance(raw, dict) else {}
    amount = _int(raw.get("amount"), prefix + "remind-amount", "Remind before", 1,
                  MAX_DUE_AMOUNT, required=False)
    if amount is None:
        return None
    unit = _choice(raw.get("unit"), {u: u for u in REMIND_UNITS}, prefix + "remind-unit",
                   "a unit for the reminder")
    return {"amount": amount, "unit": unit}


def _step(raw, index: int, trigger: dict, flow_uid: str | None) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    prefix = f"steps-{index}-"
    category = _choice(raw.get("category"), CATEGORY_LABELS, prefix + "category",
                       "a category")
    step_type = _choice(raw.get("type"), STEP_TYPE_LABELS, prefix + "type", "an action")
    if step_type not in STEP_TYPES[category]:
        raise _error(prefix + "type", f"“{STEP_TYPE_LABELS[step_type]}” is not a "
                                      f"{CATEGORY_LABELS[category].lower()}.", "bad_choice")
    if step_type in PATIENT_STEPS and not trigger_has_patient(trigger):
        raise _error(prefix + "type", "A flow for the whole clinic has no patient or client "
                                      "for this action.")
    out = {"category": category, "type": step_type,
           "item": _step_item(step_type, raw.get("item"), prefix + "item",
                              position=index + 1, flow_uid=flow_uid,
                              has_patient=trigger_has_patient(trigger))}
    if step_type in RESPONSIBLE_STEPS:
        out["responsible"] = _responsible(raw.get("responsible"), prefix + "responsible",
                                          trigger)
    if step_type in CHANNEL_STEPS:
        out["channel"] = _choice(raw.get("channel"), CHANNEL_LABELS, prefix + "channel",
                                 "a channel")
    out["due"] = _due(raw.get("due"), prefix, trigger)
    if step_type == "staff_task":
        out["remind"] = _remind(raw.get("remind"), prefix)
        out["completes_flow"] = flag(raw.get("completes_flow"))
    out["cancel_on_discharge"] = flag(raw.get("cancel_on_discharge"))
    return out


def definition_clean(data: dict, *, flow_uid: str | None = None) -> dict:
    """The builder's raw definition checked and normalised (spec.md's shape), or a
    DomainError naming the builder's field at fault. `flow_uid`: the flow being edited
    (it may not start itself)."""
    data = data if isinstance(data, dict) else {}
    trigger = _trigger(data.get("trigger"))
    conditions = data.get("conditions") or []
    steps = data.get("steps") or []
    if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS:
        raise _error("conditions-0-field", f"At most {MAX_CONDITIONS} conditions.")
    if not isinstance(steps, list) or not steps:
        raise _error("steps", "Add at least one step: a flow that does nothing is not saved.",
                     "required")
    if len(steps) > MAX_STEPS:
        raise _error("steps", f"At most {MAX_STEPS} steps.")
    return {"trigger": trigger,
            "conditions": [_condition(c, i, trigger) for i, c in enumerate(conditions)],
            "steps": [_step(s, i, trigger, flow_uid) for i, s in enumerate(steps)]}


# In words, for the pages

def trigger_describe(trigger: dict) -> str:
    """The trigger as a sentence ("A task is overdue by 30 minutes, order contains “fluid”")."""
    kind = trigger.get("kind")
    words = TRIGGER_LABELS.get(kind, kind or "?")
    if kind == "task_overdue":
        words += f" by {trigger.get('minutes')} minutes"
    if kind == "value_recorded":
        limits = [f"above {trigger['above']}" if trigger.get("above") else "",
                  f"below {trigger['below']}" if trigger.get("below") else ""]
        words += " (" + " or ".join(x for x in limits if x) + ")"
    if trigger.get("order"):
        words += f", order contains “{trigger['order']}”"
    if kind == "form_finalised":
        form = trigger.get("form") and db.session.scalar(
            select(FormTemplate.name).where(FormTemplate.uid == trigger["form"]))
        words += f": “{form}”" if form else ": any form"
    if kind == "schedule":
        words = _schedule_describe(trigger)
    return words


def _schedule_describe(trigger: dict) -> str:
    every = trigger.get("every")
    if every == "weekly":
        when = "Every " + ", ".join(WEEKDAY_LABELS[d] for d in trigger.get("weekdays", []))
    elif every == "days":
        when = f"Every {trigger.get('days')} days"
    else:
        when = "Every day"
    scope = "each admitted patient" if trigger.get("scope") == "patients" else "the clinic"
    return f"{when} at {trigger.get('time')}, for {scope}"
