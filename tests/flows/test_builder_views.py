"""The builder's pages: managers only, CSRF tokens in every form, a flow created from the
posted form, bad input re-rendered with its error (422) and nothing stored, rows added and
removed without JavaScript, templates, the dry run's page."""

import re

from kiosk.extensions import db
from kiosk.flows.models import Flow, FlowTemplate
from kiosk.flows.views import definition_from_form

FORM = {"name": "Admission bloods", "enabled": "1", "action": "save",
        "trigger-kind": "task_overdue", "trigger-minutes": "30", "trigger-order": "fluids",
        "conditions-0-field": "weight_kg", "conditions-0-op": "ge", "conditions-0-value": "5",
        "steps-0-category": "task", "steps-0-type": "staff_task",
        "steps-0-item": "Check {{ patient.name }}", "steps-0-responsible": "level:3",
        "steps-0-due-amount": "15", "steps-0-due-unit": "minutes",
        "steps-0-due-after": "task_due", "steps-0-due-weekend": "keep",
        "steps-0-remind-amount": "", "steps-0-remind-unit": "hours",
        "steps-0-cancel_on_discharge": "1"}


def test_pages_are_for_managers_only(clinic, client, login):
    login(clinic.user(5))
    for url in ("/flows/", "/flows/new", "/flows/templates", "/flows/templates/new"):
        assert client.get(url).status_code == 403, url
    assert client.post("/flows/new", data=FORM).status_code == 403


def test_a_manager_creates_a_flow_from_the_form(clinic, client, login, count):
    login(clinic.user(6))
    assert 'href="/flows/"' in client.get("/admin/").text  # the nav and the admin page
    page = client.get("/flows/new").text
    assert 'name="csrf_token"' in page and 'name="steps-0-type"' in page
    response = client.post("/flows/new", data=FORM)
    assert response.status_code == 302, response.text
    flow = db.session.query(Flow).one()
    assert (flow.name, flow.enabled, flow.trigger_kind) == ("Admission bloods", True,
                                                            "task_overdue")
    step = flow.current_version.definition["steps"][0]
    assert step["due"] == {"amount": 15, "unit": "minutes", "after": "task_due",
                           "weekend": "keep"}
    assert step["remind"] is None and step["cancel_on_discharge"] is True
    listing = client.get("/flows/").text
    assert "A task is overdue by 30 minutes, order contains “fluids”" in listing
    assert 'name="csrf_token"' in listing
    edit = client.get(f"/flows/{flow.uid}").text
    assert 'value="Check {{ patient.name }}"' in edit and "Save as version 2" in edit


def test_bad_input_is_shown_next_to_its_field_and_nothing_is_stored(clinic, client, login,
                                                                    count):
    login(clinic.user(6))
    for changes, field, words in (
            ({"steps-0-item": "Check {{ patient.nmae }}"}, "steps-0-item",
             "unknown merge field “patient.nmae”"),
            ({"steps-0-due-after": "discharged"}, "steps-0-due-after", "cannot be worked out"),
            ({"trigger-kind": ""}, "trigger-kind", "Choose what starts the flow"),
            ({"name": ""}, "name", "The name is required")):
        response = client.post("/flows/new", data={**FORM, **changes})
        assert response.status_code == 422, field
        assert words in response.text
        assert f'id="{field}-error"' in response.text
        assert count(Flow) == 0
    no_steps = {k: v for k, v in FORM.items() if not k.startswith("steps-")}
    response = client.post("/flows/new", data=no_steps)
    assert response.status_code == 422 and 'id="steps-error"' in response.text
    assert count(Flow) == 0


def test_rows_are_added_and_removed_without_javascript(clinic, client, login, count):
    login(clinic.user(6))
    page = client.post("/flows/new", data={**FORM, "action": "add-step"}).text
    assert 'name="steps-1-type"' in page and 'value="Check {{ patient.name }}"' in page
    page = client.post("/flows/new", data={**FORM, "action": "add-condition"}).text
    assert 'name="conditions-1-field"' in page
    page = client.post("/flows/new", data={**FORM, "action": "remove-condition-0"}).text
    assert 'name="conditions-0-field"' not in page and "No conditions" in page
    page = client.post("/flows/new", data={**FORM, "steps-0-category": "smartflow",
                                           "action": "refresh"}).text
    assert re.search(r'<option value="staff_message" selected>', page)
    assert count(Flow) == 0


def test_the_form_parses_into_the_raw_definition(app):
    from werkzeug.datastructures import MultiDict

    form = MultiDict({**FORM, "conditions-3-field": "form_field", "conditions-3-key": "cpr",
                      "conditions-3-op": "eq", "conditions-3-value": "Do not"})
    form.add("trigger-weekdays", "1")
    raw = definition_from_form(form)
    assert raw["trigger"]["kind"] == "task_overdue" and raw["trigger"]["weekdays"] == ["1"]
    assert [c["field"] for c in raw["conditions"]] == ["weight_kg", "form_field:cpr"]
    assert raw["steps"][0]["due"]["after"] == "task_due"


def test_templates_are_made_from_their_page(clinic, client, login, count):
    login(clinic.user(6))
    page = client.get("/flows/templates/new").text
    assert "{{ patient.name }}" in page and 'name="csrf_token"' in page
    bad = client.post("/flows/templates/new", data={"name": "Welcome",
                                                    "body": "Hi {{ pateint.name }}"})
    assert bad.status_code == 422 and "unknown merge field “pateint.name”" in bad.text
    assert count(FlowTemplate) == 0
    good = client.post("/flows/templates/new", data={"name": "Welcome", "enabled": "1",
                                                     "body": "Hi {{ owner.name }}"})
    assert good.status_code == 302 and count(FlowTemplate) == 1
    assert "Welcome" in client.get("/flows/templates").text


def test_the_dry_run_page_says_nothing_is_done(clinic, client, login, flow_make):
    flow = flow_make("Admission bloods")
    login(clinic.user(6))
    page = client.get(f"/flows/{flow.uid}/dry-run")
    assert page.status_code == 200 and "Nothing is done" in page.text
    assert 'name="patient"' in page.text


def test_the_flow_is_turned_off_from_the_list(clinic, client, login, flow_make):
    flow = flow_make("Admission bloods")
    login(clinic.user(6))
    assert client.post(f"/flows/{flow.uid}/enabled", data={"enabled": "0"}).status_code == 302
    db.session.expire_all()
    assert flow.enabled is False


def test_forms_carry_their_csrf_token_and_need_it(guarded_client):
    from sqlalchemy import func, select

    client, _ = guarded_client
    assert client.post("/flows/new", data=FORM).status_code == 400
    page = client.get("/flows/new").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/flows/new", data={**FORM, "csrf_token": token}).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Flow)) == 1


def test_the_dry_run_shows_the_plan_in_clinic_time(clinic, client, login, flow_make,
                                                   count, frozen_clock):
    from kiosk.flows.models import FlowRun
    from kiosk.inbox.models import StaffTask
    from tests import factories

    flow = flow_make("Admission bloods")
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(6))
    page = client.get(f"/flows/{flow.uid}/dry-run", query_string={
        "run": "1", "patient": patient.uid, "at": "2026-11-22T12:00"}).text
    assert "Nothing was done" in page and "Bloods for Biscuit" in page
    assert "The flow would start" in page and "Species is canine" in page
    assert "Sun 22 Nov 14:00" in page and "Sun 22 Nov 13:30" in page  # due, reminder
    assert count(FlowRun) == 0 and count(StaffTask) == 0
    # A draft from the edit form: checked, tried, never stored.
    draft = client.post(f"/flows/{flow.uid}", data={**FORM, "action": "dry-run"})
    assert draft.status_code == 200 and "draft, not saved" in draft.text
    assert flow.current_version.number == 1


def test_every_trigger_and_action_renders_in_the_form(clinic, client, login, flow_make,
                                                      flow_template, form_template,
                                                      message_step_of, start_step_of):
    from .conftest import TASK_STEP

    other = flow_make("Other")
    welcome, consent = flow_template("Welcome"), form_template("Consent")
    steps = [TASK_STEP, message_step_of(welcome), start_step_of(other),
             {**message_step_of(welcome), "type": "staff_message", "responsible": "doctor"},
             {**message_step_of(welcome), "type": "patient_note"},
             {"category": "smartflow", "type": "send_form", "item": consent.uid,
              "channel": "portal", "due": {"amount": "1", "unit": "days", "after": "admitted",
                                           "weekend": "monday"}}]
    flow = flow_make("Everything", trigger={"kind": "form_finalised", "form": consent.uid},
                     conditions=[{"field": "form_field:cpr", "op": "eq", "value": "Do not"}],
                     steps=steps)
    login(clinic.user(6))
    page = client.get(f"/flows/{flow.uid}").text
    for n in range(len(steps)):
        assert f'name="steps-{n}-item"' in page
    assert 'value="cpr"' in page and f'<option value="{consent.uid}" selected>' in page
    for kind, extra in (("schedule", "trigger-weekdays"), ("value_recorded", "trigger-above"),
                        ("task_overdue", "trigger-minutes")):
        response = client.post(f"/flows/{flow.uid}", data={**FORM, "trigger-kind": kind,
                                                           "action": "refresh"})
        assert response.status_code == 200 and f'name="{extra}"' in response.text
    assert "Everything" in client.get("/flows/").text


def test_failed_steps_are_listed_with_a_retry_button(clinic, client, login, flow_make,
                                                     frozen_clock):
    from kiosk.flows.models import FlowRun, FlowStep
    from tests import factories

    flow = flow_make("Admission bloods")
    patient = factories.patient_make(clinic, "Biscuit")
    run = FlowRun(key="k1", flow_id=flow.id, version_id=flow.current_version_id,
                  patient_id=patient.id, event_kind="patient_admitted",
                  event_at=frozen_clock.now)
    db.session.add(run)
    db.session.flush()
    step = FlowStep(run_id=run.id, position=0, kind="staff_task", status="failed",
                    run_at=frozen_clock.now, attempts=5, last_error="No such user")
    db.session.add(step)
    db.session.commit()
    login(clinic.user(6))
    page = client.get("/flows/").text
    assert "No such user" in page and "Biscuit" in page
    assert f'action="/flows/steps/{step.uid}/retry"' in page
    assert client.post(f"/flows/steps/{step.uid}/retry").status_code == 302
    db.session.refresh(step)
    assert (step.status, step.attempts) == ("pending", 0)
    assert "No such user" not in client.get("/flows/").text
