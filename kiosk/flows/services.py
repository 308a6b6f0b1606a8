"""Writes of the flows builder: save a flow (a new version each time), turn it on or off,
save a template; and the report of flows that would do the same thing twice."""

from dataclasses import dataclass

from sqlalchemy import func, select

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import text_optional, text_required
from ..extensions import db
from ..forms.models import FormTemplate
from .definition import (
    CHANNEL_LABELS,
    ORDER_TRIGGERS,
    STEP_TYPE_LABELS,
    TRIGGER_LABELS,
    definition_clean,
    flag,
)
from .merge import template_check
from .models import Flow, FlowTemplate, FlowVersion

BODY_MAX = 5000


def _changed(flow: Flow, *, user) -> None:
    """Tell the pages and the runtime after commit that the flows changed. A schedule
    counts from now: what it would have done while off or before this version is not done
    late, all at once."""
    if flow.trigger_kind == "schedule":
        flow.schedule_checked_at = clock.utcnow()
    event_record(db.session, "flows.changed", flow=flow.uid, user=user.id)


# Flows

def _starts(definition: dict) -> list[tuple[int, str]]:
    """(step index, flow uid) of each start_flow step of a definition."""
    return [(i, step["item"]) for i, step in enumerate(definition.get("steps", []))
            if step.get("type") == "start_flow"]


def _cycle_check(flow_uid: str, name: str, definition: dict) -> None:
    """Refuse a definition through which flows would start each other for ever: follow
    start_flow steps through the flows' current versions (this one as edited)."""
    graph, names = {}, {flow_uid: name}
    for uid, other_name, current in db.session.execute(
            select(Flow.uid, Flow.name, FlowVersion.definition)
            .join(FlowVersion, FlowVersion.id == Flow.current_version_id)):
        names.setdefault(uid, other_name)
        graph[uid] = [target for _, target in _starts(current or {})]
    graph[flow_uid] = [target for _, target in _starts(definition)]
    for index, target in _starts(definition):
        path = _path_back(target, flow_uid, graph, seen=set())
        if path is not None:
            loop = " → ".join(names.get(uid, uid) for uid in [flow_uid, *path])
            raise DomainError("flow_cycle", f"These flows would start each other for ever: "
                                            f"{loop}.", field=f"steps-{index}-item")


def _path_back(start: str, goal: str, graph: dict, *, seen: set) -> list[str] | None:
    """The flows from `start` to `goal` along start_flow steps, or None."""
    if start == goal:
        return [goal]
    if start in seen:
        return None
    seen.add(start)
    for target in graph.get(start, ()):
        rest = _path_back(target, goal, graph, seen=seen)
        if rest is not None:
            return [start, *rest]
    return None


def flow_save(*, user, data: dict, flow: Flow | None = None) -> Flow:
    """Create a flow with its version 1, or publish an edit as its next version (runs
    already started keep theirs). `data`: name, definition (raw, as the builder sends it),
    enabled (optional). Nothing is stored if a field is wrong."""
    permission_check(user, LEVEL_MANAGER, "change flows")
    name = text_required(data.get("name"), "name", "The name", 120)
    definition = definition_clean(data.get("definition") or {},
                                  flow_uid=flow.uid if flow is not None else None)
    if flow is not None:
        _cycle_check(flow.uid, name, definition)
    if flow is None:
        flow = Flow(name=name, enabled=flag(data.get("enabled")), created_by_id=user.id,
                    trigger_kind=definition["trigger"]["kind"])
        db.session.add(flow)
        db.session.flush()
        number = 1
    else:
        current = flow.current_version
        if current is not None and current.definition == definition and current.name == name:
            return _enabled_only(flow, data, user=user)
        number = (current.number if current is not None else 0) + 1
    version = FlowVersion(flow_id=flow.id, number=number, name=name, definition=definition,
                          published_by_id=user.id, published_at=clock.utcnow())
    db.session.add(version)
    db.session.flush()
    flow.name, flow.trigger_kind, flow.current_version = (
        name, definition["trigger"]["kind"], version)
    if "enabled" in data:
        flow.enabled = flag(data.get("enabled"))
    audit_record(action="flow.published", entity="flow", entity_uid=flow.uid, user=user,
                 detail={"name": name, "version": number, "enabled": flow.enabled})
    _changed(flow, user=user)
    return flow


def _enabled_only(flow: Flow, data: dict, *, user) -> Flow:
    """An edit that changed nothing but (perhaps) whether the flow runs: no new version."""
    if "enabled" in data and flag(data.get("enabled")) != flow.enabled:
        return flow_enable(flow=flow, user=user, enabled=flag(data.get("enabled")))
    return flow


def flow_enable(*, flow: Flow, user, enabled: bool) -> Flow:
    """Turn a flow on (it reacts to events from now on) or off (it starts no new runs)."""
    permission_check(user, LEVEL_MANAGER, "change flows")
    if flow.enabled == bool(enabled):
        return flow
    flow.enabled = bool(enabled)
    audit_record(action="flow.enabled" if enabled else "flow.disabled", entity="flow",
                 entity_uid=flow.uid, user=user, detail={"name": flow.name})
    _changed(flow, user=user)
    return flow


# Templates

def template_save(*, user, data: dict, template: FlowTemplate | None = None) -> FlowTemplate:
    """Create or change a template (name unique, subject optional, body required, merge
    fields checked); a change applies to runs started from now on."""
    permission_check(user, LEVEL_MANAGER, "change flow templates")
    name = text_required(data.get("name"), "name", "The name", 120)
    taken = select(FlowTemplate.id).where(func.lower(FlowTemplate.name) == name.lower())
    if template is not None:
        taken = taken.where(FlowTemplate.id != template.id)
    if db.session.scalar(taken) is not None:
        raise DomainError("name_taken", f"A template called “{name}” already exists.",
                          field="name")
    subject = text_optional(data.get("subject"), "subject", "The subject", 200)
    body = text_required(data.get("body"), "body", "The text", BODY_MAX)
    template_check(subject or "", field="subject", label="Subject")
    template_check(body, field="body", label="Text")
    if template is None:
        template = FlowTemplate(name=name, body=body)
        db.session.add(template)
    template.name, template.subject, template.body = name, subject, body
    template.enabled = flag(data.get("enabled")) if "enabled" in data else True
    template.clinical_in_sms = flag(data.get("clinical_in_sms"))
    template.urgent = flag(data.get("urgent"))
    db.session.flush()
    audit_record(action="flow_template.saved", entity="flow_template",
                 entity_uid=template.uid, user=user,
                 detail={"name": name, "enabled": template.enabled,
                         "clinical_in_sms": template.clinical_in_sms,
                         "urgent": template.urgent})
    event_record(db.session, "flows.changed", template=template.uid, user=user.id)
    return template


# Duplicate automation

@dataclass(frozen=True)
class Duplicate:
    """Two enabled flows on the same trigger that would do the same thing twice."""

    first: Flow
    second: Flow
    action: str  # in words: 'Send a message to the client “Welcome” (E-mail)'

    @property
    def message(self) -> str:
        """The warning as a sentence for the flows page."""
        return (f"“{self.first.name}” and “{self.second.name}” both start on "
                f"“{TRIGGER_LABELS.get(self.first.trigger_kind, self.first.trigger_kind)}” "
                f"and both {self.action[0].lower()}{self.action[1:]}: avoid duplicate "
                "automation (turn one off, or remove the step from one).")


def _group_key(definition: dict) -> tuple:
    """Flows compete only on the same trigger (and the same order or form filter)."""
    trigger = definition.get("trigger", {})
    kind = trigger.get("kind")
    if kind in ORDER_TRIGGERS:
        return kind, (trigger.get("order") or "").strip().lower()
    if kind == "form_finalised":
        return kind, trigger.get("form")
    return kind, None


def _action_key(step: dict) -> tuple:
    item = step.get("item") or ""
    if step.get("type") == "staff_task":
        item = " ".join(item.lower().split())
    return step.get("type"), item


def _action_words(step: dict, names: dict) -> str:
    """What a step does, in words, naming its template, form, flow or task."""
    item = step.get("item")
    words = f"{STEP_TYPE_LABELS.get(step.get('type'), step.get('type'))} " \
            f"“{names.get(item, item)}”"
    if step.get("channel"):
        words += f" ({CHANNEL_LABELS.get(step['channel'], step['channel'])})"
    return words


def _item_names() -> dict:
    """Names of everything a step may point at, by uid (templates, forms, flows)."""
    names = {}
    for model in (FlowTemplate, FormTemplate, Flow):
        names.update((uid, name) for uid, name in db.session.execute(select(model.uid, model.name)))
    return names


def flows_duplicates() -> list[Duplicate]:
    """Enabled flows with the same trigger (and order or form filter) that have a step
    doing the same thing (same action and item), each pair and action once."""
    rows = db.session.execute(
        select(Flow, FlowVersion.definition)
        .join(FlowVersion, FlowVersion.id == Flow.current_version_id)
        .where(Flow.enabled.is_(True)).order_by(Flow.name, Flow.id)).all()
    names, found = None, []
    for i, (first, first_def) in enumerate(rows):
        for second, second_def in rows[i + 1:]:
            if _group_key(first_def) != _group_key(second_def):
                continue
            theirs = {_action_key(step) for step in second_def.get("steps", [])}
            shared = {}
            for step in first_def.get("steps", []):
                if _action_key(step) in theirs:
                    shared.setdefault(_action_key(step), step)
            for step in shared.values():
                names = names if names is not None else _item_names()
                found.append(Duplicate(first, second, _action_words(step, names)))
    return found
