"""The demo clinic's flows: two on and one off, built through the services, and what the
ones that are on did with the demo's own admissions."""

from datetime import UTC, datetime

from sqlalchemy import select

from kiosk.core.jobs import jobs_run_pending
from kiosk.extensions import db
from kiosk.flows.engine import flow_plan
from kiosk.flows.matching import age_years
from kiosk.flows.models import Flow, FlowRun, FlowTemplate
from kiosk.inbox.models import StaffTask
from kiosk.patients.models import Patient
from kiosk.staff.models import User


def demo(frozen_clock):
    from kiosk.demo import demo_build

    frozen_clock.set(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))  # a Wednesday
    demo_build()
    db.session.commit()


def test_the_demo_has_its_flows_on_and_off_with_their_templates(app, frozen_clock):
    demo(frozen_clock)
    flows = {f.name: f for f in db.session.scalars(select(Flow))}
    assert {name: f.enabled for name, f in flows.items()} == {
        "Senior bloods": True, "Fever alert": True, "Discharge follow-up": False,
        # The intake e-mail needs an SMTP server: off until a clinic sets one up.
        "Intake form to the owner": False, "Tell the vet the intake form arrived": True}
    assert all(f.current_version.number == 1 for f in flows.values())
    bloods = flows["Senior bloods"].current_version.definition
    assert bloods["steps"][0]["due"] == {"amount": 2, "unit": "hours", "after": "admitted",
                                         "weekend": "monday"}
    assert bloods["steps"][0]["remind"] == {"amount": 1, "unit": "hours"}
    follow = flows["Discharge follow-up"].current_version.definition["steps"][0]
    assert (follow["channel"], follow["due"]["after"], follow["due"]["amount"]) == (
        "sms", "discharged", 2)
    assert set(db.session.scalars(select(FlowTemplate.name))) == {
        "Fever alert", "Discharge follow-up (SMS)", "Intake form arrived"}


def test_senior_dogs_of_the_demo_get_a_bloods_task_for_the_vet_named_on_them(
        app, frozen_clock):
    demo(frozen_clock)
    jobs_run_pending()
    vet = db.session.scalar(select(User).where(User.username == "vet"))
    seniors = {p.id for p in db.session.scalars(select(Patient))
               if p.species == "canine" and age_years(p, p.admitted_at) >= 7}
    assert seniors  # the demo's dates of birth give it some
    tasks = list(db.session.scalars(select(StaffTask)))
    assert {t.patient_id for t in tasks} == seniors
    assert all(t.assignee_id == vet.id and t.title.startswith("Bloods for ") for t in tasks)
    assert db.session.scalar(select(FlowRun.id).join(Flow).where(
        Flow.name == "Fever alert")) is None  # no demo temperature is above 39.5


def test_the_dry_run_of_senior_bloods_names_the_patients_vet(app, frozen_clock):
    demo(frozen_clock)
    flow = db.session.scalar(select(Flow).where(Flow.name == "Senior bloods"))
    patient = next(p for p in db.session.scalars(select(Patient).order_by(Patient.id))
                   if p.species == "canine" and age_years(p, p.admitted_at) >= 7)
    # Admitted on Saturday 14:00: due two hours later, moved to Monday 16:00.
    plan = flow_plan(version=flow.current_version, patient=patient,
                     at=datetime(2026, 12, 5, 14, 0, tzinfo=UTC))
    assert plan.matched
    step = plan.steps[0]
    assert step.responsible_label == "Dr Sam Okafor"
    assert step.text == f"Bloods for {patient.name}"
    assert step.due_at == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    assert step.remind_at == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
