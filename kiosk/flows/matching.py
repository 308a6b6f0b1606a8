"""Whether a flow applies to an event, and what its steps would do: one set of rules for
the runtime and the dry run (which writes nothing)."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from .definition import NUMERIC_OPS
from .due import due_compute, remind_compute

# The condition fields read from the patient's own record.
PATIENT_FIELDS = ("species", "ward", "sex", "breed", "doctor")


@dataclass
class Facts:
    """What is known of one event, as conditions and due rules read it."""

    kind: str
    at: datetime
    patient: object | None = None
    order_name: str | None = None
    order_kind: str | None = None
    value: str | None = None
    form_template: str | None = None
    fields: dict = field(default_factory=dict)
    task_due: datetime | None = None
    minutes: int | None = None
    flow: str | None = None  # a schedule's event is its flow's own
    tz: tzinfo = UTC  # the clinic's: a patient's age counts in its days

    def summary(self) -> dict:
        """The small JSON kept on the run (what the timeline and merge fields show)."""
        out = {key: getattr(self, key) for key in ("order_name", "order_kind", "value")
               if getattr(self, key) is not None}
        if self.task_due is not None:
            out["task_due"] = self.task_due.isoformat()
        return out


@dataclass(frozen=True)
class ConditionResult:
    """One condition of the dry run: its words, whether it held, and what was found."""

    label: str
    ok: bool
    detail: str


def _number(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def trigger_matches(trigger: dict, facts: Facts, *, flow_uid: str) -> bool:
    """Whether the event is one this trigger waits for (its kind and its own filters)."""
    kind = trigger.get("kind")
    if kind != facts.kind:
        return False
    if kind == "schedule":
        return facts.flow == flow_uid
    wanted_order = trigger.get("order")
    if wanted_order and wanted_order.lower() not in (facts.order_name or "").lower():
        return False
    if kind == "form_finalised" and trigger.get("form") and \
            trigger["form"] != facts.form_template:
        return False
    if kind == "task_overdue":
        return trigger.get("minutes") == facts.minutes
    if kind == "value_recorded":
        return value_out_of_range(trigger, facts.value)
    return True


def value_out_of_range(trigger: dict, value) -> bool:
    """Whether a recorded value is above or below the trigger's limits (a number only)."""
    number = _number(value)
    if number is None:
        return False
    above, below = _number(trigger.get("above")), _number(trigger.get("below"))
    return (above is not None and number > above) or (below is not None and number < below)


def age_years(patient, at: datetime, tz: tzinfo = UTC) -> Decimal | None:
    """The patient's age in whole years on the event's day in the clinic (None without a
    birth date)."""
    born: date | None = getattr(patient, "date_of_birth", None)
    if born is None:
        return None
    day = at.astimezone(tz).date()
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    return Decimal(years)


def fact_value(name: str, facts: Facts):
    """The value a condition's field names, for this event (None when unknown)."""
    patient = facts.patient
    if name in PATIENT_FIELDS:
        if patient is None:
            return None
        if name == "ward":
            return patient.ward.name if patient.ward is not None else None
        return getattr(patient, name)
    if name == "age_years":
        return age_years(patient, facts.at, facts.tz) if patient is not None else None
    if name == "weight_kg":
        return getattr(patient, "weight_kg", None) if patient is not None else None
    if name.startswith("form_field:"):
        return facts.fields.get(name.split(":", 1)[1])
    return getattr(facts, name, None)


def condition_check(condition: dict, facts: Facts) -> tuple[bool, object]:
    """Whether one condition holds, and the value it was judged on."""
    op, wanted = condition["op"], condition["value"]
    found = fact_value(condition["field"], facts)
    if found is None or found == "":
        return op == "ne", found
    if op in NUMERIC_OPS or isinstance(found, Decimal | int | float):
        have, want = _number(found), _number(wanted)
        if have is None or want is None:
            return (op == "ne"), found
        return {"eq": have == want, "ne": have != want, "gt": have > want,
                "ge": have >= want, "lt": have < want, "le": have <= want,
                "contains": str(want) in str(have)}[op], found
    have, want = str(found).strip().lower(), str(wanted).strip().lower()
    return {"eq": have == want, "ne": have != want, "contains": want in have}.get(op, False), \
        found


def conditions_hold(conditions: list[dict], facts: Facts) -> bool:
    """Whether every condition holds ("only when the criteria are met")."""
    return all(condition_check(condition, facts)[0] for condition in conditions)


def conditions_explain(conditions: list[dict], facts: Facts, labels) -> list[ConditionResult]:
    """Each condition in words with its outcome, for the dry run."""
    out = []
    for condition in conditions:
        ok, found = condition_check(condition, facts)
        shown = "unknown" if found is None or found == "" else str(found)
        out.append(ConditionResult(labels(condition), ok, f"found: {shown}"))
    return out


def anchor_time(after: str, facts: Facts) -> datetime | None:
    """The time a due rule counts from (None: it cannot resolve for this event)."""
    patient = facts.patient
    if after == "event":
        return facts.at
    if after == "admitted":
        if facts.kind == "patient_admitted":  # the same time; in a dry run, the one chosen
            return facts.at
        return patient.admitted_at if patient is not None else None
    if after == "discharged":
        if facts.kind == "patient_discharged":
            return facts.at
        return getattr(patient, "discharged_at", None)
    if after == "task_due":
        return facts.task_due
    return None


@dataclass
class StepTimes:
    """When a step runs, when its task is due, and when to remind."""

    run_at: datetime
    due_at: datetime | None
    remind_at: datetime | None


def step_times(step: dict, facts: Facts, *, now: datetime, tz) -> StepTimes:
    """A step's times: a staff task is made at once and is due by its rule; every other
    step runs when its rule says (at once when that time has passed, e.g. after an
    outage). Raises LookupError when the rule's anchor is unknown for this event."""
    due = step.get("due") or {"amount": 0, "unit": "minutes", "after": "event",
                              "weekend": "keep"}
    anchor = anchor_time(due["after"], facts)
    if anchor is None:
        raise LookupError(f"no time to count from: {due['after']}")
    due_at = due_compute(anchor=anchor, amount=int(due["amount"]), unit=due["unit"],
                         weekend=due.get("weekend", "keep"), tz=tz)
    remind = step.get("remind")
    remind_at = None
    if step["type"] == "staff_task" and remind:
        remind_at = remind_compute(due=due_at, amount=int(remind["amount"]),
                                   unit=remind["unit"], tz=tz)
    if step["type"] == "staff_task":
        return StepTimes(now, due_at, remind_at)
    return StepTimes(max(due_at, now), due_at, None)

