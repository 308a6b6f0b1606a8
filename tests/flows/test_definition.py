"""A flow's definition: each bad input refused naming the builder's field, nothing stored;
a good one normalised; versions; loops of flows starting each other; duplicate automation."""

import pytest

from kiosk.extensions import db
from kiosk.flows.definition import definition_clean
from kiosk.flows.models import FlowVersion
from kiosk.flows.services import flow_enable, flow_save, flows_duplicates

from .conftest import TASK_STEP


def test_a_good_definition_is_normalised(clinic, raw_definition):
    clean = definition_clean(raw_definition(conditions=[
        {"field": "weight_kg", "op": "ge", "value": " 12,50 "},
        {"field": "sex", "op": "eq", "value": "fs"}]))
    assert clean["trigger"] == {"kind": "patient_admitted"}
    assert clean["conditions"] == [{"field": "weight_kg", "op": "ge", "value": "12.5"},
                                   {"field": "sex", "op": "eq", "value": "FS"}]
    assert clean["steps"] == [{
        "category": "task", "type": "staff_task", "item": "Bloods for {{ patient.name }}",
        "responsible": "level:3",
        "due": {"amount": 2, "unit": "hours", "after": "event", "weekend": "keep"},
        "remind": {"amount": 30, "unit": "minutes"}, "completes_flow": True,
        "cancel_on_discharge": True}]
    assert definition_clean(clean) == clean  # normalised stays normalised


def test_trigger_parameters_are_kept_per_kind(clinic, raw_definition):
    clean = definition_clean(raw_definition(trigger={
        "kind": "schedule", "every": "weekly", "weekdays": ["4", "0"], "time": "08:30",
        "scope": "patients", "minutes": "5"}))
    assert clean["trigger"] == {"kind": "schedule", "every": "weekly", "weekdays": [0, 4],
                                "time": "08:30", "scope": "patients"}
    overdue = definition_clean(raw_definition(trigger={
        "kind": "task_overdue", "minutes": "30", "order": " fluids "}))
    assert overdue["trigger"] == {"kind": "task_overdue", "minutes": 30, "order": "fluids"}


def step(**changes) -> dict:
    """The task step with some keys changed (due/remind merged)."""
    out = {**TASK_STEP, **changes}
    for key in ("due", "remind"):
        if key in changes and changes[key] is not None:
            out[key] = {**TASK_STEP[key], **changes[key]}
    return out


@pytest.mark.parametrize(("parts", "field", "words"), [
    ({"trigger": {"kind": ""}}, "trigger-kind", "Choose what starts the flow"),
    ({"trigger": {"kind": "appointment_missed"}}, "trigger-kind", "not what starts"),
    ({"trigger": {"kind": "task_overdue"}}, "trigger-minutes", "required"),
    ({"trigger": {"kind": "task_overdue", "minutes": "0"}}, "trigger-minutes", "between 1"),
    ({"trigger": {"kind": "value_recorded"}}, "trigger-above", "above, below"),
    ({"trigger": {"kind": "value_recorded", "below": "lots"}}, "trigger-below", "number"),
    ({"trigger": {"kind": "form_finalised", "form": "nope"}}, "trigger-form", "no form"),
    ({"trigger": {"kind": "schedule", "every": "hourly"}}, "trigger-every", "how often"),
    ({"trigger": {"kind": "schedule", "every": "days", "time": "08:00", "scope": "clinic"}},
     "trigger-days", "required"),
    ({"trigger": {"kind": "schedule", "every": "weekly", "time": "08:00"}},
     "trigger-weekdays", "Tick the days"),
    ({"trigger": {"kind": "schedule", "every": "daily", "time": "25:00"}},
     "trigger-time", "time of day"),
    ({"trigger": {"kind": "schedule", "every": "daily", "time": "08:00", "scope": "x"}},
     "trigger-scope", "who it runs for"),
    ({"conditions": [{"field": "colour", "op": "eq", "value": "x"}]},
     "conditions-0-field", "not a field"),
    ({"conditions": [{"field": "order_name", "op": "eq", "value": "x"}]},
     "conditions-0-field", "only be tested when an order"),
    ({"conditions": [{"field": "species", "op": "gt", "value": "3"}]},
     "conditions-0-op", "not a number"),
    ({"conditions": [{"field": "age_years", "op": "contains", "value": "3"}]},
     "conditions-0-op", "is a number"),
    ({"conditions": [{"field": "age_years", "op": "ge", "value": "old"}]},
     "conditions-0-value", "must be a number"),
    ({"conditions": [{"field": "species", "op": "eq", "value": "dragon"}]},
     "conditions-0-value", "not one of"),
    ({"conditions": [{"field": "breed", "op": "eq", "value": ""}]},
     "conditions-0-value", "Give the value"),
    ({"steps": []}, "steps", "at least one step"),
    ({"steps": [step(category="chores")]}, "steps-0-category", "a category"),
    ({"steps": [step(type="client_message")]}, "steps-0-type", "is not a task"),
    ({"steps": [step(item="  ")]}, "steps-0-item", "Give the task's name"),
    ({"steps": [step(item="Call {{ owner.nmae }}")]}, "steps-0-item",
     "unknown merge field “owner.nmae”"),
    ({"steps": [step(responsible="")]}, "steps-0-responsible", "who is responsible"),
    ({"steps": [step(responsible="level:9")]}, "steps-0-responsible", "a level (1–6)"),
    ({"steps": [step(responsible="user:no-such-user")]}, "steps-0-responsible", "active"),
    ({"steps": [step(due={"amount": "-1"})]}, "steps-0-due-amount", "between 0"),
    ({"steps": [step(due={"unit": "fortnights"})]}, "steps-0-due-unit", "a unit"),
    ({"steps": [step(due={"after": "discharged"})]}, "steps-0-due-after",
     "“After discharge” cannot be worked out"),
    ({"steps": [step(due={"after": "task_due"})]}, "steps-0-due-after", "cannot be worked"),
    ({"steps": [step(due={"weekend": "sunday"})]}, "steps-0-due-weekend", "weekend rule"),
    ({"steps": [step(remind={"amount": "0"})]}, "steps-0-remind-amount", "between 1"),
    ({"steps": [step(remind={"unit": "weeks"})]}, "steps-0-remind-unit", "reminder"),
    ({"steps": [TASK_STEP, {"category": "smartflow", "type": "client_message", "item": "",
                            "channel": "email"}]}, "steps-1-item", "Choose template"),
    ({"steps": [{"category": "smartflow", "type": "client_message",
                 "item": "0b7c6d1e-0000-4000-8000-000000000000", "channel": "email"}]},
     "steps-0-item", "no enabled template"),
    ({"steps": [{"category": "smartflow", "type": "send_form", "item": "missing",
                 "channel": "sms"}]}, "steps-0-item", "no form in use"),
    ({"steps": [{"category": "smartflow", "type": "start_flow", "item": "missing"}]},
     "steps-0-item", "no flow"),
])
def test_each_bad_input_names_its_field_and_nothing_is_stored(
        clinic, raw_definition, save_refused, parts, field, words):
    error = save_refused(raw_definition(**parts))
    assert error.field == field
    assert words in error.message


def test_no_trigger_at_all_is_refused(clinic, save_refused):
    error = save_refused({"steps": [TASK_STEP]})
    assert error.field == "trigger-kind"


def test_a_name_is_required(clinic, raw_definition, save_refused):
    error = save_refused(raw_definition(), name=" ")
    assert (error.field, error.code) == ("name", "required")


def test_a_disabled_template_or_a_bad_channel_is_refused(
        clinic, raw_definition, save_refused, flow_template, message_step_of):
    off = flow_template("Old news", enabled=False)
    assert save_refused(raw_definition(steps=[message_step_of(off)])).field == "steps-0-item"
    on = flow_template("Welcome")
    error = save_refused(raw_definition(steps=[message_step_of(on, channel="pigeon")]))
    assert error.field == "steps-0-channel"


def test_anchors_resolve_per_trigger(clinic, raw_definition, manager):
    discharged = raw_definition(trigger={"kind": "patient_discharged"},
                                steps=[step(due={"after": "discharged"})])
    assert definition_clean(discharged)["steps"][0]["due"]["after"] == "discharged"
    overdue = raw_definition(trigger={"kind": "task_overdue", "minutes": "15"},
                             steps=[step(due={"after": "task_due"})])
    assert definition_clean(overdue)["steps"][0]["due"]["after"] == "task_due"


def test_a_clinic_schedule_has_no_patient(clinic, raw_definition, save_refused,
                                          flow_template, message_step_of):
    trigger = {"kind": "schedule", "every": "daily", "time": "07:00", "scope": "clinic"}
    error = save_refused(raw_definition(trigger=trigger, conditions=[],
                                        steps=[step(due={"after": "admitted"})]))
    assert error.field == "steps-0-due-after"
    error = save_refused(raw_definition(trigger=trigger, conditions=[],
                                        steps=[step(responsible="doctor")]))
    assert error.field == "steps-0-responsible"
    error = save_refused(raw_definition(trigger=trigger, conditions=[], steps=[
        message_step_of(flow_template())]))
    assert error.field == "steps-0-type"


def test_a_clinic_schedule_cannot_start_a_flow_that_needs_a_patient(
        clinic, raw_definition, save_refused, flow_make):
    patients_flow = flow_make("Bloods", trigger={"kind": "flow_started"}, conditions=[],
                              steps=[step(responsible="doctor")])
    clinic_flow = flow_make("Crash cart", trigger={"kind": "flow_started"}, conditions=[],
                            steps=[step(responsible="level:3")])
    trigger = {"kind": "schedule", "every": "daily", "time": "07:00", "scope": "clinic"}
    start = {"category": "smartflow", "type": "start_flow", "due": TASK_STEP["due"]}
    error = save_refused(raw_definition(trigger=trigger, conditions=[],
                                        steps=[{**start, "item": patients_flow.uid}]))
    assert (error.field, error.code) == ("steps-0-item", "needs_patient")
    assert "“Bloods” works on a patient" in error.message
    assert definition_clean(raw_definition(trigger=trigger, conditions=[], steps=[
        {**start, "item": clinic_flow.uid}]))["steps"][0]["item"] == clinic_flow.uid


def test_a_choice_sent_as_a_list_is_refused_not_a_crash(clinic, raw_definition, save_refused):
    error = save_refused(raw_definition(trigger={"kind": ["patient_admitted"]}))
    assert (error.field, error.code) == ("trigger-kind", "bad_choice")


def test_an_edit_is_a_new_version_and_the_old_one_stays(clinic, manager, flow_make,
                                                        raw_definition, count):
    flow = flow_make("Admission bloods")
    first = flow.current_version
    assert (first.number, flow.trigger_kind, flow.enabled) == (1, "patient_admitted", True)
    kept = dict(first.definition)
    changed = raw_definition(trigger={"kind": "patient_discharged"})
    flow_save(user=manager, data={"name": "Discharge bloods", "definition": changed},
              flow=flow)
    db.session.commit()
    db.session.expire_all()
    assert flow.current_version.number == 2
    assert (flow.name, flow.trigger_kind) == ("Discharge bloods", "patient_discharged")
    old = db.session.get(FlowVersion, first.id)
    assert (old.number, old.name, old.definition) == (1, "Admission bloods", kept)
    assert count(FlowVersion) == 2
    # Saved again unchanged: no version 3.
    flow_save(user=manager, data={"name": "Discharge bloods", "definition": changed},
              flow=flow)
    db.session.commit()
    assert count(FlowVersion) == 2


def test_only_a_manager_saves_flows(clinic, raw_definition, flow_counts):
    from kiosk.core.errors import Forbidden

    with pytest.raises(Forbidden):
        flow_save(user=clinic.user(5), data={"name": "x", "definition": raw_definition()})
    db.session.rollback()
    assert flow_counts() == (0, 0)


def test_flows_starting_each_other_in_a_loop_are_refused(
        clinic, manager, flow_make, raw_definition, start_step_of, save_refused):
    a = flow_make("A")
    b = flow_make("B", steps=[TASK_STEP, start_step_of(a)])
    error = save_refused(raw_definition(steps=[start_step_of(b)]), name="A", flow=a)
    assert (error.field, error.code) == ("steps-0-item", "flow_cycle")
    assert "A → B → A" in error.message
    assert a.current_version.number == 1
    # Starting itself is refused too; a chain without a loop is fine.
    assert save_refused(raw_definition(steps=[start_step_of(a)]), name="A",
                        flow=a).field == "steps-0-item"
    c = flow_make("C", steps=[start_step_of(b)])
    assert c.current_version.definition["steps"][0]["item"] == b.uid


def test_duplicate_automation_is_reported(clinic, manager, flow_make, flow_template,
                                          message_step_of, form_template):
    welcome = flow_template("Welcome")
    flow_make("Admission email", steps=[message_step_of(welcome)])
    flow_make("Admission bloods")
    second = flow_make("Admission welcome", steps=[
        message_step_of(welcome), {**TASK_STEP, "item": "  bloods for {{ patient.name }} "}])
    flow_make("Discharge email", trigger={"kind": "patient_discharged"},
              steps=[message_step_of(welcome)])
    found = {(d.first.name, d.second.name, d.action) for d in flows_duplicates()}
    assert found == {
        ("Admission email", "Admission welcome",
         "Send a message to the client “Welcome” (E-mail)"),
        ("Admission bloods", "Admission welcome",
         "Create a staff task “Bloods for {{ patient.name }}”")}
    message = next(d for d in flows_duplicates() if d.first.name == "Admission email").message
    assert "avoid duplicate automation" in message and "A patient is admitted" in message
    flow_enable(flow=second, user=manager, enabled=False)
    db.session.commit()
    assert flows_duplicates() == []


def test_order_triggers_compete_only_on_the_same_order_filter(clinic, flow_make):
    trigger = {"kind": "order_created", "order": "Fluids"}
    flow_make("Fluids one", trigger=trigger, conditions=[])
    flow_make("Fluids two", trigger={**trigger, "order": "fluids "}, conditions=[])
    flow_make("Any order", trigger={"kind": "order_created", "order": ""}, conditions=[])
    assert [(d.first.name, d.second.name) for d in flows_duplicates()] == [
        ("Fluids one", "Fluids two")]
