"""The flows runtime against a real database and the real job queue: events become runs
once, with their real time; steps do what they say, are retried, and end with the patient."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from kiosk.core.jobs import jobs_run_pending
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.flows.capture import overdue_capture, schedule_capture
from kiosk.flows.engine import flow_plan, step_retry, steps_failed
from kiosk.flows.jobs import flows_sweep
from kiosk.flows.models import FlowEvent, FlowRun, FlowStep
from kiosk.inbox.models import StaffMessage
from kiosk.inbox.services import staff_task_complete
from kiosk.messaging.models import ClientMessage
from kiosk.treatments.models import Note, Task
from kiosk.treatments.services import task_complete
from tests import factories
from tests.support.flows import (
    AT_ONCE,
    SATURDAY,
    SENIOR_DOG,
    WEDNESDAY,
    admit,
    flow_make,
    task_step,
    tasks,
    template_make,
)


def test_an_admitted_senior_dog_gets_a_bloods_task_for_its_vet(london):
    flow_make(london, SENIOR_DOG)
    rex = admit(london)
    assert jobs_run_pending() >= 1
    [task] = tasks()
    assert task.title == "Bloods for Rex"
    assert task.assignee_id == london.users[5].id
    assert task.patient_id == rex.id
    assert task.due_at == WEDNESDAY + timedelta(hours=2)
    assert task.remind_at == WEDNESDAY + timedelta(hours=1)
    [run] = db.session.scalars(select(FlowRun)).all()
    assert run.status == "running" and run.event_at == rex.admitted_at


def test_a_young_dog_or_a_cat_starts_nothing(london):
    flow_make(london, SENIOR_DOG)
    admit(london, "Pup", born="2025-01-01")
    admit(london, "Tom", species="feline")
    jobs_run_pending()
    assert tasks() == []
    assert db.session.scalar(select(func.count(FlowRun.id))) == 0
    assert db.session.scalar(select(func.count(FlowEvent.id))) == 2  # seen, evaluated
    assert db.session.scalar(select(func.count(FlowEvent.id)).where(
        FlowEvent.processed_at.is_(None))) == 0


def test_no_enabled_flow_writes_no_event(london):
    flow_make(london, SENIOR_DOG, enabled=False)
    admit(london)
    assert db.session.scalar(select(func.count(FlowEvent.id))) == 0


def test_an_admission_synced_after_an_outage_counts_from_when_it_happened(london, frozen_clock):
    flow_make(london, SENIOR_DOG)
    frozen_clock.set(WEDNESDAY + timedelta(hours=5))  # the tablet comes back at 15:00
    admit(london, at=WEDNESDAY)  # admitted offline at 10:00
    jobs_run_pending()
    [task] = tasks()
    assert task.due_at == WEDNESDAY + timedelta(hours=2)  # already overdue: it is


def test_the_same_fact_evaluated_twice_starts_one_run(london):
    flow = flow_make(london, SENIOR_DOG)
    rex = admit(london)
    jobs_run_pending()
    # The same admission evaluated again (a worker that died before it noted the event as
    # done): still one run.
    event = db.session.scalar(select(FlowEvent))
    event.processed_at = None
    db.session.commit()
    flows_sweep()
    assert db.session.scalar(select(func.count(FlowRun.id))) == 1
    assert len(tasks()) == 1
    assert db.session.scalar(select(FlowRun.key)) == f"{flow.uid}:patient_admitted:{rex.uid}"


def test_a_saturday_admission_is_due_on_monday_at_the_same_time(london, frozen_clock):
    flow_make(london, SENIOR_DOG)
    frozen_clock.set(SATURDAY)
    admit(london)
    jobs_run_pending()
    [task] = tasks()
    assert task.due_at == SATURDAY + timedelta(days=2, hours=2)


def test_discharge_cancels_what_no_longer_applies(london):
    flow_make(london, {**SENIOR_DOG, "steps": [
        task_step(), task_step(item="Recheck", cancel_on_discharge=False)]})
    rex = admit(london)
    jobs_run_pending()
    patient_discharge(patient=rex, user=london.users[6], override_reason="Going home today")
    db.session.commit()
    bloods, recheck = tasks()
    assert (bloods.status, recheck.status) == ("cancelled", "open")
    assert db.session.scalar(select(FlowRun.status)) == "running"


def test_an_admission_evaluated_after_the_discharge_makes_no_task(london):
    flow_make(london, SENIOR_DOG)
    rex = admit(london)  # the evaluation waits (no consumer ran yet) …
    patient_discharge(patient=rex, user=london.users[6], override_reason="Went home early")
    db.session.commit()
    jobs_run_pending()  # … until after the discharge
    assert tasks() == []
    run = db.session.scalar(select(FlowRun))
    assert (run.status, run.end_reason) == ("cancelled", "Patient discharged")
    assert db.session.scalar(select(FlowStep.outcome)) == \
        "Not done: the patient was already discharged"


def test_completing_the_task_that_completes_the_flow_ends_the_rest(london):
    flow_make(london, {**SENIOR_DOG, "steps": [
        task_step(completes_flow=True), task_step(item="Urine sample")]})
    admit(london)
    jobs_run_pending()
    bloods, urine = tasks()
    staff_task_complete(task=bloods, user=london.users[5])
    db.session.commit()
    assert urine.status == "cancelled"
    run = db.session.scalar(select(FlowRun))
    assert run.status == "completed" and "Bloods for Rex" in run.end_reason


def test_a_run_completes_when_its_last_task_is_done(london):
    flow_make(london, SENIOR_DOG)
    admit(london)
    jobs_run_pending()
    [task] = tasks()
    staff_task_complete(task=task, user=london.users[5])
    db.session.commit()
    assert db.session.scalar(select(FlowRun.status)) == "completed"


def test_a_temperature_above_the_limit_messages_the_vets(london):
    template = template_make()
    flow_make(london, {"trigger": {"kind": "value_recorded", "order": "temp", "above": "39.5"},
                       "conditions": [],
                       "steps": [{"category": "smartflow", "type": "staff_message", "due": AT_ONCE,
                                  "item": template.uid, "responsible": "level:5"}]})
    rex = admit(london)
    order = factories.order_make(london, rex, name="Temperature", value_type="number",
                                 value_units="°C", every_hours=4)
    first, second = db.session.scalars(select(Task).where(Task.order_id == order.id)
                                       .order_by(Task.due_at).limit(2))
    task_complete(task=first, user=london.users[3], value="38.6")
    task_complete(task=second, user=london.users[3], value="40.1")
    db.session.commit()
    jobs_run_pending()
    [message] = db.session.scalars(select(StaffMessage)).all()
    assert message.to_level == 5 and message.body == "Rex has 40.1"


def test_a_failing_step_is_retried_then_waits_for_a_manager(london, frozen_clock):
    template = template_make()
    vet = london.users[5]
    flow_make(london, {"trigger": {"kind": "patient_admitted"}, "conditions": [],
                       "steps": [{"category": "smartflow", "type": "staff_message", "due": AT_ONCE,
                                  "item": template.uid, "responsible": f"user:{vet.uid}"}]})
    vet.active = False  # the person the step names has left
    db.session.commit()
    admit(london)
    jobs_run_pending()
    step = db.session.scalar(select(FlowStep))
    assert step.status == "pending" and step.attempts == 1 and "no longer" in step.last_error
    for _ in range(6):
        frozen_clock.advance(minutes=31)
        flows_sweep()
    assert step.status == "failed" and steps_failed() == [step]
    assert db.session.scalar(select(func.count(StaffMessage.id))) == 0
    vet.active = True
    step_retry(step=step, user=london.users[6])
    db.session.commit()
    jobs_run_pending()
    assert step.status == "done"
    assert db.session.scalar(select(func.count(StaffMessage.id))) == 1


def test_a_task_overdue_by_thirty_minutes_makes_a_task_once(london, frozen_clock):
    flow_make(london, {"trigger": {"kind": "task_overdue", "minutes": "30", "order": "fluid"},
                       "conditions": [],
                       "steps": [task_step(item="Check {{ event.order }}", remind=None,
                                           responsible="level:3",
                                           due={"amount": "0", "unit": "minutes",
                                                "after": "event", "weekend": "keep"})]})
    rex = admit(london)
    factories.order_make(london, rex, name="Fluid check", every_hours=4)
    frozen_clock.advance(minutes=29)
    flows_sweep()
    assert tasks() == []
    frozen_clock.advance(minutes=2)
    flows_sweep()
    flows_sweep()
    [task] = tasks()
    assert task.assignee_level == 3 and task.title == "Check Fluid check"


def test_a_daily_schedule_runs_once_per_admitted_patient(london, frozen_clock):
    flow_make(london, {"trigger": {"kind": "schedule", "every": "daily", "time": "08:00",
                                   "scope": "patients"},
                       "conditions": [],
                       "steps": [task_step(item="Weigh {{ patient.name }}", remind=None,
                                           due={"amount": "1", "unit": "hours",
                                                "after": "event", "weekend": "keep"})]})
    admit(london, "Rex")
    admit(london, "Fido")
    frozen_clock.advance(hours=23)  # Thursday 09:00: the 08:00 occurrence has passed
    assert schedule_capture() == 1
    db.session.commit()
    flows_sweep()
    flows_sweep()
    assert sorted(task.title for task in tasks()) == ["Weigh Fido", "Weigh Rex"]
    assert {task.due_at for task in tasks()} == {datetime(2026, 12, 3, 9, 0, tzinfo=UTC)}


def test_notes_client_messages_and_started_flows(london):
    note = template_make("Admission note", "Admitted {{ patient.name }} ({{ patient.species }})")
    sms = template_make("Welcome", "We are looking after {{ patient.name }}.")
    follow = flow_make(london, {"trigger": {"kind": "flow_started"}, "conditions": [],
                                "steps": [task_step(item="Follow-up call", remind=None)]},
                       name="Follow-up")
    flow_make(london, {"trigger": {"kind": "patient_admitted"}, "conditions": [], "steps": [
        {"category": "smartflow", "type": "patient_note", "due": AT_ONCE, "item": note.uid},
        {"category": "smartflow", "type": "client_message", "due": AT_ONCE, "item": sms.uid,
         "channel": "sms"},
        {"category": "smartflow", "type": "start_flow", "due": AT_ONCE, "item": follow.uid}]})
    rex = admit(london)
    jobs_run_pending()
    assert db.session.scalar(select(Note.text).where(Note.patient_id == rex.id)) == \
        "Admitted Rex (canine)"
    [message] = db.session.scalars(select(ClientMessage)).all()
    # Recorded by the flow; the sender then found no owner to write to, and said so.
    assert (message.channel, message.body, message.status, message.status_detail) == \
        ("sms", "We are looking after Rex.", "not_sent", "The patient has no owner on record.")
    [task] = tasks()
    assert task.title == "Follow-up call"
    child = db.session.scalar(select(FlowRun).where(FlowRun.parent_run_id.is_not(None)))
    assert child.flow_id == follow.id


def test_a_dry_run_shows_every_step_and_writes_nothing(london):
    flow = flow_make(london, SENIOR_DOG, enabled=False)
    rex = admit(london)
    plan = flow_plan(version=flow.current_version, patient=rex, at=SATURDAY)
    assert plan.matched and [c.ok for c in plan.conditions] == [True, True]
    [step] = plan.steps
    assert step.text == "Bloods for Rex" and step.responsible_label == "Ada Lovelace"
    assert step.due_at == SATURDAY + timedelta(days=2, hours=2)  # as if admitted then
    assert step.error is None
    assert db.session.scalar(select(func.count(FlowRun.id))) == 0
    assert tasks() == []


def test_events_left_by_a_crashed_evaluator_are_taken_again(london, frozen_clock):
    flow_make(london, SENIOR_DOG)
    admit(london)
    event = db.session.scalar(select(FlowEvent))
    event.claim, event.lease_until = "crashed", WEDNESDAY + timedelta(minutes=5)
    db.session.commit()
    flows_sweep()
    assert tasks() == []  # still held by the lost worker's lease
    frozen_clock.advance(minutes=6)
    flows_sweep()
    assert len(tasks()) == 1


def test_overdue_capture_without_flows_does_nothing(london):
    assert overdue_capture() == 0


def test_a_dry_run_judges_the_value_it_is_given_against_the_trigger(london):
    flow = flow_make(london, {"trigger": {"kind": "value_recorded", "order": "temp",
                                          "above": "39.5"}, "conditions": [],
                              "steps": [task_step(item="Cool {{ patient.name }}", remind=None,
                                                  due=AT_ONCE)]}, enabled=False)
    rex = admit(london)
    cool = flow_plan(version=flow.current_version, patient=rex, at=WEDNESDAY,
                     event_data={"value": "38.2", "order_name": "Temperature"})
    hot = flow_plan(version=flow.current_version, patient=rex, at=WEDNESDAY,
                    event_data={"value": "40.1", "order_name": "Temperature"})
    assert not cool.matched and hot.matched
    assert [c.ok for c in cool.conditions] == [True, False]
    assert cool.conditions[1].label == "Value is above 39.5"


def test_a_schedule_switched_on_late_does_not_run_the_morning_it_missed(london, frozen_clock):
    from kiosk.flows.services import flow_enable

    flow = flow_make(london, {"trigger": {"kind": "schedule", "every": "daily", "time": "08:00",
                                          "scope": "clinic"}, "conditions": [],
                              "steps": [task_step(item="Check the crash cart", remind=None,
                                                  responsible="level:3", due=AT_ONCE,
                                                  cancel_on_discharge=False)]},
                     enabled=False)
    frozen_clock.set(WEDNESDAY + timedelta(hours=5))  # 15:00, the 08:00 long gone
    flow_enable(flow=flow, user=london.users[6], enabled=True)
    db.session.commit()
    flows_sweep()
    assert tasks() == []
    frozen_clock.set(WEDNESDAY + timedelta(hours=22, minutes=1))  # Thursday 08:01
    flows_sweep()
    [task] = tasks()
    assert task.title == "Check the crash cart" and task.patient_id is None


def test_a_long_client_subject_is_cut_to_fit(london):
    long = template_make("Long", "Hi", subject="S" * 180 + " {{ patient.name }}")
    flow_make(london, {"trigger": {"kind": "patient_admitted"}, "conditions": [], "steps": [
        {"category": "smartflow", "type": "client_message", "due": AT_ONCE, "item": long.uid,
         "channel": "email"}]})
    admit(london, "Maximilian the Magnificent")
    jobs_run_pending()
    [message] = db.session.scalars(select(ClientMessage)).all()
    assert len(message.subject) == 200 and message.subject.startswith("S" * 180 + " Maxim")


def test_an_age_counts_in_the_clinics_days(app, frozen_clock):
    """In Auckland a dog turns 7 when the clinic's day says so, not when UTC's does."""
    from kiosk.core.clock import zone
    from kiosk.flows.matching import Facts, condition_check

    clinic = factories.clinic_make(timezone="Pacific/Auckland")  # UTC+13 in December
    frozen_clock.set(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # 2 Dec 01:00 in Auckland
    rex = admit(clinic, born="2019-12-02")
    seven = {"field": "age_years", "op": "ge", "value": "7"}
    assert condition_check(seven, Facts(kind="patient_admitted", at=rex.admitted_at,
                                        patient=rex, tz=zone("Pacific/Auckland")))[0]
    assert not condition_check(seven, Facts(kind="patient_admitted", at=rex.admitted_at,
                                            patient=rex))[0]  # by UTC's day: still 6
