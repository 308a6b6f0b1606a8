"""Merge fields: the words of flow templates and task names with {{ patient.name }} in them.

Templates are written by managers and rendered by the runtime, so they go through Jinja's
sandbox, and only what the catalogue below names may be read: a check walks the parsed
template before it is saved, so a typo (`patient.nmae`) or an attribute escape
(`''.__class__`) is refused on the builder's form, not found at send time.
"""

import functools
from datetime import date

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..core.clock import moment_text, to_local
from ..core.errors import DomainError

MERGE_FIELDS: dict[str, str] = {
    "patient.name": "Patient's name",
    "patient.species": "Species",
    "patient.breed": "Breed",
    "patient.sex": "Sex",
    "patient.age": "Age (e.g. 3 years)",
    "patient.weight": "Weight (e.g. 12.5 kg)",
    "patient.ward": "Ward",
    "patient.cage": "Cage",
    "patient.doctor": "Doctor",
    "patient.file_number": "File number",
    "patient.admitted": "When the patient was admitted",
    "patient.discharged": "When the patient was discharged",
    "owner.name": "Owner's name",
    "owner.phone": "Owner's phone",
    "clinic.name": "The clinic's name",
    "event.kind": "What happened (e.g. patient admitted)",
    "event.date": "The day it happened",
    "event.time": "The time it happened",
    "event.value": "The value recorded",
    "event.order": "The order's name",
    "flow.name": "This flow's name",
    "task.due": "When the task is due",
}
MERGE_ROOTS = tuple(dict.fromkeys(key.split(".")[0] for key in MERGE_FIELDS))
# Filters a manager may use; everything else Jinja offers is refused.
FILTERS = ("upper", "lower", "title", "capitalize", "trim", "default", "truncate", "replace")
RENDER_MAX = 5000  # characters of one rendered text (a message, a note, a task's name)

# Node types a template may contain: text, merge fields, filters and simple if/else.
_ALLOWED_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.If,
                  nodes.Not, nodes.And, nodes.Or, nodes.Compare, nodes.Operand, nodes.CondExpr,
                  nodes.Concat, nodes.Keyword, nodes.Filter, nodes.Getattr, nodes.Name)


def _replace(value, old, new, count=None) -> str:
    """Jinja's replace, refusing a result past RENDER_MAX before it is built: replaces
    nested in one another grow a text exponentially (a way to fill the server's memory)."""
    text, old, new = str(value), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    if count is not None:
        times = min(times, max(int(count), 0))
    if len(text) + times * (len(new) - len(old)) > RENDER_MAX:
        raise ValueError(f"the text would be longer than {RENDER_MAX} characters")
    return text.replace(old, new, times)


def _environment(undefined) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=undefined, autoescape=False,
                                        keep_trailing_newline=True)
    env.filters = {name: env.filters[name] for name in FILTERS}
    env.filters["replace"] = _replace
    env.globals = {}
    return env


# The check is strict (a field missing from the sample is an error); sending is forgiving
# (a value the patient lacks renders empty, never stops a message).
_CHECK_ENV = _environment(StrictUndefined)
_RENDER_ENV = _environment(Undefined)
_SAMPLE = {root: {key.split(".")[1]: "x" for key in MERGE_FIELDS if key.startswith(root + ".")}
           for root in MERGE_ROOTS}


def _invalid(label: str, field: str, reason: str) -> DomainError:
    return DomainError("template_invalid", f"{label}: {reason}", field=field)


def _walk(node, label: str, field: str) -> None:
    """Refuse any node outside the allow-list, any unknown merge field or filter."""
    if not isinstance(node, _ALLOWED_NODES):
        raise _invalid(label, field, f"“{type(node).__name__}” is not allowed in a template "
                                     "(use merge fields, filters and if/else only).")
    if isinstance(node, nodes.Getattr):
        inner = node.node
        name = f"{inner.name}.{node.attr}" if isinstance(inner, nodes.Name) else None
        if name not in MERGE_FIELDS:
            shown = name or f"….{node.attr}"
            raise _invalid(label, field, f"unknown merge field “{shown}”.")
        return
    if isinstance(node, nodes.Name):
        raise _invalid(label, field, f"unknown merge field “{node.name}” "
                                     "(write e.g. “patient.name”).")
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        raise _invalid(label, field, f"unknown filter “{node.name}” (you may use: "
                                     f"{', '.join(FILTERS)}).")
    for child in node.iter_child_nodes():
        _walk(child, label, field)


def template_check(text: str, *, field: str, label: str) -> None:
    """Refuse (DomainError "template_invalid", naming `field`) a text that does not parse,
    reads anything but the catalogue's merge fields or uses a filter not allowed."""
    try:
        tree = _CHECK_ENV.parse(text or "")
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise _invalid(label, field, f"the template cannot be read{where}: {exc.message}") \
            from None
    _walk(tree, label, field)
    try:  # a filter given arguments it cannot take only shows when it runs
        _CHECK_ENV.from_string(text or "").render(_SAMPLE)
    except Exception as exc:  # noqa: BLE001 (any failure of a manager's text is a form error)
        raise _invalid(label, field, f"the template cannot be used: {exc}") from None


def _fields_in(node) -> set[str]:
    """Every merge field a node reads (the node itself included)."""
    found = set()
    for getattr_node in (node, *node.find_all(nodes.Getattr)):
        if isinstance(getattr_node, nodes.Getattr) and isinstance(getattr_node.node,
                                                                   nodes.Name):
            found.add(f"{getattr_node.node.name}.{getattr_node.attr}")
    return found


def _fields_shown(node, guarded: frozenset = frozenset()) -> set[str]:
    """The merge fields a template prints with no fallback: not those only tested by an
    if, nor those an if around them tests ("{% if owner.name %}Dear {{ owner.name }}
    {% endif %}"), nor those given a fallback ("owner.name or 'client'", "x if owner.name
    else y", "owner.name|default('client', true)")."""
    if isinstance(node, nodes.If | nodes.CondExpr):
        inner = guarded | _fields_in(node.test)
        if isinstance(node, nodes.If):
            children = (*node.body, *node.elif_, *node.else_)
        else:
            children = tuple(c for c in (node.expr1, node.expr2) if c is not None)
        found = set()
        for child in children:
            found |= _fields_shown(child, inner)
        return found
    if isinstance(node, nodes.Or):  # the left side has its fallback on the right
        return _fields_shown(node.right, guarded | _fields_in(node.left))
    if isinstance(node, nodes.Filter) and node.name == "default" and _default_for_empty(node):
        return set()
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        name = f"{node.node.name}.{node.attr}"
        return set() if name in guarded else {name}
    found = set()
    for child in node.iter_child_nodes():
        found |= _fields_shown(child, guarded)
    return found


def _default_for_empty(node: nodes.Filter) -> bool:
    """Whether a default filter also replaces an empty value (its second argument true):
    merge fields are never undefined, only empty."""
    flags = [*node.args[1:2], *(kw.value for kw in node.kwargs if kw.key == "boolean")]
    return any(isinstance(flag, nodes.Const) and flag.value for flag in flags)


def template_empty_fields(text: str, context: dict) -> list[str]:
    """The merge fields `text` prints that have no value in `context` (sorted): a message
    that would go out with a gap ("Dear ,") is recorded as not sent instead."""
    try:
        tree = _CHECK_ENV.parse(text or "")
    except TemplateError:
        return []  # refused at save; template_render says why
    empty = []
    for name in _fields_shown(tree):
        root, _, key = name.partition(".")
        value = (context.get(root) or {}).get(key)
        if value is None or str(value).strip() == "":
            empty.append(name)
    return sorted(empty)


@functools.lru_cache(maxsize=512)
def _compiled(text: str):
    """A template compiled once per text (a flow sends the same words again and again)."""
    return _RENDER_ENV.from_string(text)


def template_render(text: str, context: dict) -> str:
    """The text with its merge fields filled in, sandboxed, plain text, at most RENDER_MAX
    characters; DomainError "template_invalid" if it cannot be rendered."""
    try:
        out = _compiled(text or "").render(context)
    except Exception as exc:  # noqa: BLE001 (a stored text that fails says why, never crashes)
        raise DomainError("template_invalid", f"The template cannot be used: {exc}") from None
    return out[:RENDER_MAX]


def _age(born: date | None, today: date) -> str:
    """'3 years', '5 months' or '12 days' ("" when the date of birth is unknown)."""
    if born is None or born > today:
        return ""
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    if months >= 24:
        return f"{months // 12} years"
    if months >= 1:
        return f"{months} month{'s' if months != 1 else ''}"
    days = (today - born).days
    return f"{days} day{'s' if days != 1 else ''}"


def _patient_fields(patient, tz, today: date) -> tuple[dict, dict]:
    """The patient and owner roots (every key present, empty when unknown)."""
    if patient is None:
        return ({key.split(".")[1]: "" for key in MERGE_FIELDS if key.startswith("patient.")},
                {"name": "", "phone": ""})
    weight = patient.weight_kg
    return ({
        "name": patient.name or "", "species": patient.species or "",
        "breed": patient.breed or "", "sex": patient.sex_label if patient.sex else "",
        "age": _age(patient.date_of_birth, today),
        "weight": f"{weight.normalize():f} kg" if weight is not None else "",
        "ward": patient.ward.name if patient.ward is not None else "",
        "cage": patient.cage or "", "doctor": patient.doctor or "",
        "file_number": patient.file_number or "",
        "admitted": moment_text(patient.admitted_at, tz),
        "discharged": moment_text(patient.discharged_at, tz),
    }, _owner_fields(patient))


def _owner_fields(patient) -> dict:
    """The owner root: the owner's record when the patient has one, else what the patient
    shows (an owner typed at the bedside)."""
    owner = patient.owner
    if owner is not None:
        return {"name": owner.name or "", "phone": owner.phone or ""}
    return {"name": patient.owner_name or "", "phone": patient.owner_phone or ""}


def merge_context(*, patient, event_kind: str, event_at, event_data: dict, flow_name: str,
                  task_due=None, settings=None) -> dict:
    """The values merge fields read, as text in the clinic's time zone; `patient` may be
    None (a clinic-wide schedule): its fields and the owner's are then empty. `settings`:
    the clinic's, when the caller has them (a batch of steps reads them once)."""
    from ..clinic.selectors import settings_get, settings_zone

    settings = settings or settings_get()
    tz = settings_zone(settings)
    local = to_local(event_at, tz) if event_at is not None else None
    patient_root, owner_root = _patient_fields(
        patient, tz, local.date() if local is not None else date.min)
    data = event_data or {}
    value = data.get("value")
    return {
        "patient": patient_root, "owner": owner_root, "clinic": {"name": settings.name or ""},
        "event": {"kind": (event_kind or "").replace("_", " "),
                  "date": f"{local:%a} {local.day} {local:%b}" if local else "",
                  "time": f"{local:%H:%M}" if local else "",
                  "value": "" if value is None else str(value),
                  "order": data.get("order_name") or ""},
        "flow": {"name": flow_name or ""},
        "task": {"due": moment_text(task_due, tz)},
    }
