"""What each kind of anaesthesia entry holds, and the usual range of every value.

A value outside its usual range (HR 900, SpO₂ 120) is never stored silently: the person
is asked to confirm it, and the entry keeps the names of the values they confirmed.
"""

from dataclasses import dataclass
from decimal import Decimal

from ..core.errors import DomainError
from ..core.validate import ERR_NOT_A_NUMBER, choice, decimal_optional, text_optional
from ..treatments.models import ROUTES
from .models import KIND_LABELS

ASA_CLASSES = ("I", "II", "III", "IV", "V")
EVENTS = {"induction": "Induction", "intubation": "Intubation",
          "surgery_start": "Surgery start", "surgery_end": "Surgery end",
          "extubation": "Extubation", "other": "Other"}
HARD_LIMIT = Decimal(100_000)  # beyond any unit here: a typing slip, refused outright


@dataclass(frozen=True)
class Measure:
    """A numeric value: its label, unit and usual range (outside it: confirm)."""

    key: str
    label: str
    unit: str
    low: Decimal
    high: Decimal


def _m(key, label, unit, low, high) -> Measure:
    return Measure(key, label, unit, Decimal(str(low)), Decimal(str(high)))


VITALS = (
    _m("hr", "HR", "bpm", 20, 300), _m("rr", "RR", "/min", 2, 80),
    _m("spo2", "SpO₂", "%", 50, 100), _m("etco2", "EtCO₂", "mmHg", 5, 100),
    _m("sys", "Systolic", "mmHg", 30, 250), _m("dia", "Diastolic", "mmHg", 10, 200),
    _m("map", "MAP", "mmHg", 20, 220), _m("temp", "Temp", "°C", 30, 43),
    _m("vaporiser", "Vaporiser", "%", 0, 8), _m("o2", "O₂", "L/min", 0, 15),
    _m("fluids", "Fluids", "mL/h", 0, 2000),
)
PRE = (
    _m("weight_kg", "Weight", "kg", "0.05", 150), _m("temp", "Temp", "°C", 30, 43),
    _m("hr", "HR", "bpm", 20, 300), _m("rr", "RR", "/min", 2, 150),
    _m("crt_s", "CRT", "s", 0, 10), _m("pain", "Pain", "/10", 0, 10),
)
HEADER_TEXT = (("procedure", "Procedure", 200), ("team", "Team", 300),
               ("equipment", "Monitoring equipment", 300))
# What a person is told about a value or an entry; the tablet, which checks the same before
# it queues an entry, is given these words (services.rules_for_pages) rather than its own.
MESSAGES = {
    "confirm_needed": "{label} {value} {unit} is outside the usual {low}–{high}: check it, "
                      "then confirm.",
    "out_of_range": "{label} {value} cannot be right.",
    "vitals_required": "Enter at least one of the vitals.",
    "pre_required": "Enter at least one pre-anaesthetic value.",
    "note_required": "The note is empty.",
    "drug_required": "Which drug?",
    "dose_required": "The dose is required.",
}


def entry_clean(kind: str, data, *, confirmed=()) -> tuple[dict, list[str]]:
    """The entry's data as stored, and the out-of-range values confirmed; DomainError if
    something is missing or wrong (`confirm_needed` names the first unconfirmed value)."""
    if not isinstance(data, dict):
        raise DomainError("bad_args", "An entry's data must be an object.", field="data")
    confirmed = set(confirmed or ())
    if kind == "vitals":
        clean, sure = _measures(VITALS, data, confirmed)
        if not clean:
            raise DomainError("required", MESSAGES["vitals_required"])
        return clean, sure
    if kind == "pre":
        clean, sure = _measures(PRE, data, confirmed, keep=("mm",))
        mm = text_optional(data.get("mm"), "mm", "Mucous membranes", 40)
        if mm:
            clean["mm"] = mm
        if not clean:
            raise DomainError("required", MESSAGES["pre_required"])
        return clean, sure
    if kind == "header":
        return _header(data), []
    if kind == "drug":
        return _drug(data), []
    if kind == "event":
        event = choice(data.get("event"), "event", "Event", tuple(EVENTS))
        clean = {"event": event}
        note = text_optional(data.get("note"), "note", "Note", 200)
        if event == "other" and not note:
            raise DomainError("required", "Say what happened.", field="note")
        if note:
            clean["note"] = note
        return clean, []
    if kind == "note":
        text = text_optional(data.get("text"), "text", "Note", 2000)
        if not text:
            raise DomainError("required", MESSAGES["note_required"], field="text")
        return {"text": text}, []
    raise DomainError("bad_choice", "The kind must be one of: header, pre, drug, event, "
                      "vitals, note.", field="kind")


def _measures(measures, data: dict, confirmed: set, keep=()) -> tuple[dict, list]:
    known = {m.key for m in measures} | set(keep)
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise DomainError("bad_args", f"Unknown value: {unknown[0]}.", field=unknown[0])
    clean, sure = {}, []
    for m in measures:
        number = decimal_optional(data.get(m.key), m.key, m.label, minimum=None)
        if number is None:
            continue
        if abs(number) > HARD_LIMIT:
            raise DomainError("out_of_range", MESSAGES["out_of_range"].format(
                label=m.label, value=number), field=m.key)
        if not m.low <= number <= m.high:
            if m.key not in confirmed:
                raise DomainError("confirm_needed", MESSAGES["confirm_needed"].format(
                    label=m.label, value=_plain(number), unit=m.unit, low=_plain(m.low),
                    high=_plain(m.high)), field=m.key)
            sure.append(m.key)
        clean[m.key] = _plain(number)
    return clean, sure


def _plain(number: Decimal) -> str:
    return f"{number.normalize():f}"


def _header(data: dict) -> dict:
    clean = {}
    for key, label, size in HEADER_TEXT:
        text = text_optional(data.get(key), key, label, size)
        if text:
            clean[key] = text
    if data.get("asa") not in (None, ""):
        clean["asa"] = choice(data.get("asa"), "asa", "ASA status", ASA_CLASSES)
    if data.get("emergency") is not None:
        if not isinstance(data["emergency"], bool):
            raise DomainError("bad_type", "Emergency (E) must be yes or no.", field="emergency")
        clean["emergency"] = data["emergency"]
    if not clean:
        raise DomainError("required", "Enter the procedure, ASA status, team or equipment.")
    return clean


def _drug(data: dict) -> dict:
    drug = text_optional(data.get("drug"), "drug", "Drug", 80)
    if not drug:
        raise DomainError("required", MESSAGES["drug_required"], field="drug")
    dose = text_optional(data.get("dose"), "dose", "Dose", 40)
    if not dose:
        raise DomainError("required", MESSAGES["dose_required"], field="dose")
    clean = {"drug": drug, "dose": dose,
             "route": choice(data.get("route"), "route", "Route", ROUTES)}
    given_by = text_optional(data.get("given_by"), "given_by", "Given by", 80)
    if given_by:
        clean["given_by"] = given_by
    return clean


def entry_describe(kind: str, data: dict, confirmed=()) -> str:
    """One line a person reads for an entry (an addendum listed apart, for one):
    'HR 92 bpm · SpO₂ 98 %', 'Methadone 0.2 mg/kg IV given by Sam', 'Extubation'.
    Values confirmed outside their usual range are marked '(confirmed)'."""
    data = data if isinstance(data, dict) else {}
    confirmed = set(confirmed or ())
    if kind in ("vitals", "pre"):
        parts = [f"{m.label} {data[m.key]} {m.unit}"
                 + (" (confirmed)" if m.key in confirmed else "")
                 for m in (VITALS if kind == "vitals" else PRE) if m.key in data]
        if data.get("mm"):
            parts.append(f"MM {data['mm']}")
        return " · ".join(parts)
    if kind == "drug":
        given = f"given by {data['given_by']}" if data.get("given_by") else ""
        return " ".join(filter(None, (data.get("drug"), data.get("dose"), data.get("route"),
                                      given)))
    if kind == "event":
        event = EVENTS.get(data.get("event"), data.get("event") or "")
        return f"{event} — {data['note']}" if data.get("note") else event
    if kind == "header":
        parts = [f"{label}: {data[key]}" for key, label, _size in HEADER_TEXT if data.get(key)]
        if data.get("asa"):
            parts.append(f"ASA {asa_label(data)}")
        elif "emergency" in data:
            parts.append("emergency (E)" if data["emergency"] else "not an emergency")
        return " · ".join(parts)
    return str(data.get("text", ""))


def asa_label(header: dict) -> str:
    """ASA status as written on a sheet: 'III E', or '' when not given."""
    asa = header.get("asa", "")
    return f"{asa} E" if asa and header.get("emergency") else asa


def entry_rules() -> dict:
    """The usual ranges, the event names and the words for what is wrong as plain JSON, for
    a tablet to ask for a confirmation before it queues an entry (the numbers the server
    checks, not a copy). Measures are lists, in the order of the sheet's columns."""
    def table(measures):
        return [{"key": m.key, "label": m.label, "unit": m.unit, "low": _plain(m.low),
                 "high": _plain(m.high)} for m in measures]

    return {"vitals": table(VITALS), "pre": table(PRE), "hard_limit": _plain(HARD_LIMIT),
            "events": EVENTS, "asa": list(ASA_CLASSES), "kinds": KIND_LABELS,
            "messages": MESSAGES | {"not_a_number": ERR_NOT_A_NUMBER},
            "header": {key: label for key, label, _size in HEADER_TEXT} | {"asa": "ASA"}}
