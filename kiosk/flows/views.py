"""The flows builder (level 6): the list of flows with duplicate warnings and failed steps,
the edit form (rows added and removed without JavaScript), templates, and the dry run."""

import json
import re

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.auth import LEVEL_MANAGER, current_user, level_required
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.models import row_by_uid
from ..extensions import db
from ..forms.selectors import form_templates_list
from ..patients.selectors import patient_by_uid, patients_list
from ..staff.selectors import users_list
from . import definition as d
from . import engine
from .merge import MERGE_FIELDS
from .models import Flow, FlowStep, FlowTemplate
from .services import flow_enable, flow_save, flows_duplicates, template_save

bp = Blueprint("flows", __name__, url_prefix="/flows")

MANAGE = "manage flows"
ROW_CAP = 60  # rows read from a posted form, whatever it claims
NEW_STEP = {"category": "task", "type": "staff_task", "item": "", "responsible": "doctor",
            "channel": "email", "due": {"amount": "0", "unit": "hours", "after": "event",
                                        "weekend": "keep"},
            "remind": {"amount": "", "unit": "hours"}, "cancel_on_discharge": "1"}
NEW_CONDITION = {"field": "species", "op": "eq", "value": ""}
ACTION = re.compile(r"^(remove-condition|remove-step|up-step)-(\d{1,3})$")


# The form and the raw definition

def _indices(form, prefix: str, suffix: str) -> list[int]:
    """The row numbers posted for `prefix-<n>-suffix`, in order."""
    pattern = re.compile(rf"^{prefix}-(\d{{1,3}})-{suffix}$")
    found = {int(m.group(1)) for key in form.keys() if (m := pattern.match(key))}
    return sorted(found)[:ROW_CAP]


def _condition_from(form, n: int) -> dict:
    get = lambda name: form.get(f"conditions-{n}-{name}", "")  # noqa: E731
    field = get("field")
    if field == d.FORM_FIELD:
        field = f"{d.FORM_FIELD}:{get('key').strip()}"
    return {"field": field, "op": get("op"), "value": get("value")}


def _step_from(form, n: int) -> dict:
    get = lambda name: form.get(f"steps-{n}-{name}", "")  # noqa: E731
    return {"category": get("category"), "type": get("type"), "item": get("item"),
            "responsible": get("responsible"), "channel": get("channel"),
            "due": {"amount": get("due-amount"), "unit": get("due-unit"),
                    "after": get("due-after"), "weekend": get("due-weekend")},
            "remind": {"amount": get("remind-amount"), "unit": get("remind-unit")},
            "completes_flow": get("completes_flow"),
            "cancel_on_discharge": get("cancel_on_discharge")}


def definition_from_form(form) -> dict:
    """The builder's posted inputs (spec.md's names: trigger-kind, steps-0-type …) as the
    raw definition `definition_clean` takes."""
    trigger = {key: form.get(f"trigger-{key}", "") for key in (
        "kind", "minutes", "order", "form", "above", "below", "every", "days", "time",
        "scope")}
    trigger["weekdays"] = form.getlist("trigger-weekdays")
    return {"trigger": trigger,
            "conditions": [_condition_from(form, n)
                           for n in _indices(form, "conditions", "field")],
            "steps": [_step_from(form, n) for n in _indices(form, "steps", "category")]}


def _as_form(definition: dict) -> dict:
    """A stored (normalised) definition as the form's text values."""
    text = lambda v: "" if v is None else ("1" if v is True else "" if v is False else str(v))  # noqa: E731
    trigger = {k: (v if k == "weekdays" else text(v))
               for k, v in definition.get("trigger", {}).items()}
    steps = []
    for step in definition.get("steps", []):
        row = {k: text(v) for k, v in step.items() if k not in ("due", "remind")}
        row["due"] = {k: text(v) for k, v in (step.get("due") or {}).items()}
        row["remind"] = {k: text(v) for k, v in (step.get("remind") or {}).items()}
        steps.append(row)
    return {"trigger": trigger, "conditions": list(definition.get("conditions", [])),
            "steps": steps}


def _apply_action(action: str, raw: dict) -> dict:
    """Add, remove or move a row, or only tidy the form (a kind or category changed)."""
    conditions, steps = raw["conditions"], raw["steps"]
    if action == "add-condition":
        conditions.append(dict(NEW_CONDITION))
    elif action == "add-step":
        steps.append(json.loads(json.dumps(NEW_STEP)))
    elif match := ACTION.match(action):
        what, n = match.group(1), int(match.group(2))
        rows = conditions if what == "remove-condition" else steps
        if what.startswith("remove") and n < len(rows):
            rows.pop(n)
        elif what == "up-step" and 0 < n < len(rows):
            rows[n - 1], rows[n] = rows[n], rows[n - 1]
    for step in steps:  # a category changed: offer its first action
        types = d.STEP_TYPES.get(step.get("category"), ())
        if types and step.get("type") not in types:
            step["type"], step["item"] = types[0], ""
    return raw


# Pages: the list

@bp.get("/")
@level_required(LEVEL_MANAGER, MANAGE)
def index():
    """Every flow: its trigger in words, whether it runs, its version; duplicate
    automation; steps that failed and wait for a manager."""
    flows = list(db.session.scalars(select(Flow).order_by(Flow.name, Flow.id)))
    return render_template(
        "flows/index.html", flows=flows, duplicates=flows_duplicates(),
        failed=engine.steps_failed(), describe=d.trigger_describe,
        step_labels=d.STEP_TYPE_LABELS)


def _flow(uid: str) -> Flow:
    return row_by_uid(Flow, uid, what="flow", field="flow")


@bp.post("/<uid>/enabled")
@level_required(LEVEL_MANAGER, MANAGE)
def enabled(uid: str):
    """Turn a flow on or off."""
    flow = _flow(uid)
    on = request.form.get("enabled") == "1"
    commit_or_error(lambda: flow_enable(flow=flow, user=current_user(), enabled=on))
    flash(f"“{flow.name}” is {'on: it reacts to what happens from now' if on else 'off'}.")
    return redirect(url_for("flows.index"))


@bp.post("/steps/<uid>/retry")
@level_required(LEVEL_MANAGER, MANAGE)
def step_retry(uid: str):
    """Send a failed step round again."""
    step = row_by_uid(FlowStep, uid, what="flow step", field="step")
    _, error = commit_or_error(lambda: engine.step_retry(step=step, user=current_user()))
    flash(error.message if error else "The step will be tried again.")
    return redirect(url_for("flows.index"))


# Pages: the edit form

def _pairs(query) -> list[tuple[str, str]]:
    return [(uid, name) for uid, name in db.session.execute(query)]


def _choices() -> dict:
    """What the edit form's selects offer (templates, forms, flows, staff, catalogues)."""
    forms = form_templates_list(active_only=True)
    return {
        "trigger_labels": d.TRIGGER_LABELS, "condition_labels": d.CONDITION_LABELS,
        "op_labels": d.OP_LABELS, "category_labels": d.CATEGORY_LABELS,
        "step_types": d.STEP_TYPES, "step_labels": d.STEP_TYPE_LABELS,
        "anchor_labels": d.ANCHOR_LABELS, "unit_labels": d.UNIT_LABELS,
        "remind_units": d.REMIND_UNITS, "weekend_labels": d.WEEKEND_LABELS,
        "channel_labels": d.CHANNEL_LABELS, "every_labels": d.EVERY_LABELS,
        "weekday_labels": d.WEEKDAY_LABELS, "scope_labels": d.SCOPE_LABELS,
        "template_steps": d.TEMPLATE_STEPS, "responsible_steps": d.RESPONSIBLE_STEPS,
        "channel_steps": d.CHANNEL_STEPS, "form_field": d.FORM_FIELD,
        "type_pairs": {category: [(t, d.STEP_TYPE_LABELS[t]) for t in types]
                       for category, types in d.STEP_TYPES.items()},
        "template_pairs": _pairs(select(FlowTemplate.uid, FlowTemplate.name)
                                 .where(FlowTemplate.enabled.is_(True))
                                 .order_by(FlowTemplate.name)),
        "form_templates": forms,
        "form_pairs": [(f.uid, f.name) for f in forms],
        "flow_pairs": _pairs(select(Flow.uid, Flow.name).order_by(Flow.name)),
        "users": users_list(active_only=True),
    }


def _editor(flow: Flow | None, *, name: str, enabled: bool, raw: dict,
            error: DomainError | None = None, status: int = 200):
    return make_response(render_template(
        "flows/edit.html", flow=flow, name=name, enabled=enabled, raw=raw, error=error,
        **_choices()), status)


def _edit_post(flow: Flow | None):
    """Save the posted form, or (an `action` button) re-render it with a row added,
    removed or moved; a wrong field re-renders it with the error, status 422."""
    action = request.form.get("action", "save")
    name, on = request.form.get("name", ""), bool(request.form.get("enabled"))
    raw = definition_from_form(request.form)
    if action == "dry-run":
        return _draft_dry_run(flow, name=name, enabled=on, raw=raw)
    if action != "save":
        return _editor(flow, name=name, enabled=on, raw=_apply_action(action, raw))
    data = {"name": name, "enabled": "1" if on else "", "definition": raw}
    saved, error = commit_or_error(lambda: flow_save(user=current_user(), data=data,
                                                     flow=flow))
    if error:
        return _editor(flow, name=name, enabled=on, raw=raw, error=error, status=422)
    flash(f"“{saved.name}” saved (version {saved.current_version.number}).")
    return redirect(url_for("flows.index"))


@bp.get("/new")
@level_required(LEVEL_MANAGER, MANAGE)
def new():
    """An empty flow: a trigger to choose and one step to fill."""
    raw = {"trigger": {"kind": "patient_admitted"}, "conditions": [],
           "steps": [json.loads(json.dumps(NEW_STEP))]}
    return _editor(None, name="", enabled=False, raw=raw)


@bp.post("/new")
@level_required(LEVEL_MANAGER, MANAGE)
def create():
    """Create the flow (version 1); nothing is stored if a field is wrong."""
    return _edit_post(None)


@bp.get("/<uid>")
@level_required(LEVEL_MANAGER, MANAGE)
def edit(uid: str):
    """The flow's current version in the form; saving publishes the next version."""
    flow = _flow(uid)
    definition = flow.current_version.definition if flow.current_version else {}
    return _editor(flow, name=flow.name, enabled=flow.enabled, raw=_as_form(definition))


@bp.post("/<uid>")
@level_required(LEVEL_MANAGER, MANAGE)
def update(uid: str):
    """Publish the edit as a new version (runs already started keep theirs)."""
    return _edit_post(_flow(uid))


# Pages: the dry run

def _plan(version, *, kind: str, has_patient: bool, args
          ) -> tuple[object | None, DomainError | None, str]:
    """What the flow would do for the chosen patient at the chosen time, or why not;
    also the time shown in the form. Nothing is written."""
    tz = settings_zone()
    at_text = (args.get("at") or "").strip()
    try:
        at = clock.parse_local_datetime(at_text, tz, "at") if at_text else clock.utcnow()
        patient = patient_by_uid(args["patient"]) if args.get("patient") else None
    except DomainError as exc:
        return None, exc, at_text
    at_text = at_text or clock.to_local(at, tz).strftime("%Y-%m-%dT%H:%M")
    if not args.get("run"):
        return None, None, at_text
    if patient is None and has_patient:
        return None, DomainError("required", "Choose a patient.", field="patient"), at_text
    data = {key: args[key].strip() for key in ("value", "order_name")
            if (args.get(key) or "").strip()}
    try:
        plan = engine.flow_plan(version=version, patient=patient, at=at, event_kind=kind,
                                event_data=data)
    except DomainError as exc:
        return None, exc, at_text
    finally:
        db.session.rollback()  # a dry run never writes, whatever it touched
    return plan, None, at_text


def _dry_run_page(*, flow, definition: dict, args, draft: str | None = None):
    has_patient = d.trigger_has_patient(definition["trigger"])
    plan, error, at_text = _plan(definition if draft else flow.current_version,
                                 kind=definition["trigger"]["kind"], has_patient=has_patient,
                                 args=args)
    return render_template(
        "flows/dry_run.html", flow=flow, plan=plan, error=error, args=args, at_text=at_text,
        draft=draft, patients=patients_list(), describe=d.trigger_describe,
        trigger=definition["trigger"], has_patient=has_patient,
        name=args.get("name") or (flow.name if flow else ""))


@bp.get("/<uid>/dry-run")
@level_required(LEVEL_MANAGER, MANAGE)
def dry_run(uid: str):
    """Choose a patient and a time; see what the flow would do. Nothing is done."""
    flow = _flow(uid)
    return _dry_run_page(flow=flow, definition=flow.current_version.definition,
                         args=request.args)


def _draft_dry_run(flow, *, name: str, enabled: bool, raw: dict):
    """The dry run of the edit form's unsaved definition (checked first, never stored)."""
    try:
        definition = d.definition_clean(raw, flow_uid=flow.uid if flow else None)
    except DomainError as error:
        db.session.rollback()
        return _editor(flow, name=name, enabled=enabled, raw=raw, error=error, status=422)
    return _dry_run_page(flow=flow, definition=definition, args=request.form,
                         draft=json.dumps(definition))


@bp.post("/dry-run")
@level_required(LEVEL_MANAGER, MANAGE)
def dry_run_draft():
    """The dry run of an unsaved definition, posted back by the dry run page itself."""
    flow = _flow(request.form["flow"]) if request.form.get("flow") else None
    try:
        raw = json.loads(request.form.get("definition") or "{}")
        definition = d.definition_clean(raw, flow_uid=flow.uid if flow else None)
    except ValueError:
        definition, raw = None, None
    except DomainError as exc:
        flash(f"The draft cannot be tried: {exc.message}")
        return redirect(url_for("flows.edit", uid=flow.uid) if flow else url_for("flows.new"))
    if definition is None:
        flash("The draft cannot be tried: it is not a flow's definition.")
        return redirect(url_for("flows.index"))
    return _dry_run_page(flow=flow, definition=definition, args=request.form,
                         draft=json.dumps(definition))


# Pages: templates

TEMPLATE_FIELDS = ("name", "subject", "body")


@bp.get("/templates")
@level_required(LEVEL_MANAGER, MANAGE)
def templates():
    """Every template: its name, subject and whether it is in use."""
    rows = list(db.session.scalars(select(FlowTemplate).order_by(FlowTemplate.name)))
    return render_template("flows/templates.html", templates=rows)


def _template_page(template=None, data=None, error=None, status=200):
    if data is None:
        data = {"enabled": True} if template is None else {
            "name": template.name, "subject": template.subject or "", "body": template.body,
            "enabled": template.enabled, "clinical_in_sms": template.clinical_in_sms,
            "urgent": template.urgent}
    return make_response(render_template(
        "flows/template_edit.html", template=template, data=data, error=error,
        merge_fields=MERGE_FIELDS), status)


def _template_post(template):
    data = form_data(*TEMPLATE_FIELDS)
    for box in ("enabled", "clinical_in_sms", "urgent"):
        data[box] = bool(request.form.get(box))
    saved, error = commit_or_error(lambda: template_save(user=current_user(), data=data,
                                                         template=template))
    if error:
        return _template_page(template, data, error, 422)
    flash(f"Template “{saved.name}” saved.")
    return redirect(url_for("flows.templates"))


@bp.get("/templates/new")
@level_required(LEVEL_MANAGER, MANAGE)
def template_new():
    """An empty template, with the merge fields to copy from."""
    return _template_page()


@bp.post("/templates/new")
@level_required(LEVEL_MANAGER, MANAGE)
def template_create():
    """Create the template; nothing is stored if a field is wrong."""
    return _template_post(None)


def _template(uid: str) -> FlowTemplate:
    return row_by_uid(FlowTemplate, uid, what="template", field="template")


@bp.get("/templates/<uid>")
@level_required(LEVEL_MANAGER, MANAGE)
def template_edit(uid: str):
    """One template's form."""
    return _template_page(_template(uid))


@bp.post("/templates/<uid>")
@level_required(LEVEL_MANAGER, MANAGE)
def template_update(uid: str):
    """Save the template (runs started from now on use the new words)."""
    return _template_post(_template(uid))
