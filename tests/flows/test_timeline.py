"""The patient's flow timeline: runs newest first, steps in order, what they made, in the
clinic's local time and plain words; a handful of queries whatever the number of runs."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from kiosk.core.models import new_uid
from kiosk.extensions import db
from kiosk.flows.models import Flow, FlowRun, FlowStep, FlowVersion
from kiosk.flows.timeline import timeline_for
from kiosk.inbox.models import StaffTask
from kiosk.messaging.models import ClientMessage
from tests import factories
from tests.support.tablet import paired_tablet_client

NOW = datetime(2026, 12, 2, 19, 30, tzinfo=UTC)          # Wed 2 Dec 14:30 in New York


@pytest.fixture
def clinic_ny(clinic, frozen_clock):
    """The clinic in New York (five hours behind UTC in December), the clock at NOW."""
    clinic.settings.timezone = "America/New_York"
    db.session.commit()
    frozen_clock.set(NOW)
    return clinic


def flow_make(clinic, name: str, *, number: int = 1) -> tuple[Flow, FlowVersion]:
    flow = Flow(name=name, enabled=True, trigger_kind="patient_admitted",
                created_by_id=clinic.user(6).id)
    db.session.add(flow)
    db.session.flush()
    version = FlowVersion(flow_id=flow.id, number=number, name=name, definition={},
                          published_by_id=clinic.user(6).id)
    db.session.add(version)
    db.session.flush()
    flow.current_version_id = version.id
    return flow, version


def run_make(clinic, patient, name: str, *, at: datetime, steps=(), number: int = 1,
             **fields) -> FlowRun:
    """A run of a new flow called `name` for `patient`; `steps`: FlowStep fields each."""
    flow, version = flow_make(clinic, name, number=number)
    run = FlowRun(key=new_uid(), flow_id=flow.id, version_id=version.id, patient=patient,
                  event_kind=fields.pop("event_kind", "patient_admitted"), event_at=at,
                  event_data=fields.pop("event_data", {}), started_at=at, **fields)
    db.session.add(run)
    db.session.flush()
    for position, step_fields in enumerate(steps):
        step_fields = {"kind": "staff_task", "run_at": at, **step_fields}
        db.session.add(FlowStep(uid=new_uid(), run_id=run.id, position=position,
                                **step_fields))
    db.session.flush()
    return run


def step_source(run: FlowRun, position: int) -> str:
    return f"flow_step:{next(s.uid for s in run.steps if s.position == position)}"


def full_run(clinic, patient, name="Post-op care", *, at=NOW - timedelta(hours=6)):
    """A run with a done task, a pending message, a failed step and a cancelled one."""
    run = run_make(clinic, patient, name, at=at, event_kind="order_created",
                   event_data={"order_name": "Methadone"}, steps=[
                       {"kind": "staff_task", "status": "done",
                        "due_at": NOW - timedelta(hours=1), "done_at": NOW - timedelta(minutes=25),
                        "outcome": "Task created for Level 4", "spec": {"title": "Check wound"}},
                       {"kind": "client_message", "status": "pending",
                        "run_at": datetime(2026, 12, 7, 14, 0, tzinfo=UTC),
                        "spec": {"subject": "How is Biscuit?"}},
                       {"kind": "staff_message", "status": "failed", "attempts": 3,
                        "last_error": "No user with that id"},
                       {"kind": "patient_note", "status": "cancelled",
                        "outcome": "patient discharged"},
                   ])
    db.session.add(StaffTask(
        uid=new_uid(), key=new_uid(), title="Check wound", patient=patient,
        assignee=clinic.user(4), due_at=NOW - timedelta(hours=1), status="done",
        done_at=NOW - timedelta(minutes=25), source=step_source(run, 0)))
    db.session.add(ClientMessage(
        uid=new_uid(), key=new_uid(), patient=patient, channel="email",
        subject="How is Biscuit?", body="Hello", source=step_source(run, 1)))
    db.session.commit()
    return run


def test_the_page_shows_each_run_and_its_steps_in_plain_words_and_local_times(
        client, login, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    full_run(clinic_ny, patient)
    login(clinic_ny.user(1))
    response = client.get(f"/flows/patients/{patient.uid}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Post-op care" in page and "version 1" in page
    assert "An order is created: Methadone · Wed 2 Dec 08:30 · " in page
    assert "Running" in page
    assert "Done 14:05" in page                                   # 19:05 UTC
    assert "Task “Check wound”: Done 14:05" in page
    assert "Waiting until Mon 7 Dec 09:00" in page                # 14:00 UTC
    assert "Message to the client “How is Biscuit?”: E-mail: queued" in page
    assert ("Failed 3 times: No user with that id — a manager can retry it on the Flows page"
            in page)
    assert "Cancelled: patient discharged" in page
    positions = [page.index(f"<strong>{words}") for words in (
        "Create a staff task</strong>: Check wound",
        "Send a message to the client</strong>: How is Biscuit?",
        "Send a message to staff", "Add a note to the patient")]
    assert positions == sorted(positions)


def test_runs_are_newest_first_and_another_patients_are_not_shown(client, login, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    other = factories.patient_make(clinic_ny, "Mittens")
    run_make(clinic_ny, patient, "Admission checks", at=NOW - timedelta(days=2))
    run_make(clinic_ny, patient, "Discharge call", at=NOW - timedelta(hours=1),
             status="completed", ended_at=NOW - timedelta(minutes=10),
             end_reason="Its task was completed")
    run_make(clinic_ny, patient, "Fluids review", at=NOW - timedelta(days=1),
             status="cancelled", end_reason="patient discharged")
    run_make(clinic_ny, other, "Mittens's own flow", at=NOW)
    db.session.commit()
    login(clinic_ny.user(1))
    page = client.get(f"/flows/patients/{patient.uid}").get_data(as_text=True)
    order = [page.index(name) for name in ("Discharge call", "Fluids review",
                                           "Admission checks")]
    assert order == sorted(order)
    assert "Mittens" not in page
    assert "Completed Wed 2 Dec 14:20: Its task was completed" in page
    assert "Cancelled: patient discharged" in page


def test_the_selector_gives_runs_steps_tasks_and_messages(clinic_ny):
    patient = factories.patient_make(clinic_ny)
    run = full_run(clinic_ny, patient)
    (item,) = timeline_for(patient)
    assert (item.uid, item.flow_name, item.version_number, item.status) == (
        run.uid, "Post-op care", 1, "running")
    assert item.trigger_text == "An order is created: Methadone"
    assert [s.kind for s in item.steps] == [
        "staff_task", "client_message", "staff_message", "patient_note"]
    task_step, message_step, failed, cancelled = item.steps
    (task,) = task_step.tasks
    assert (task.title, task.status, task.assignee) == ("Check wound", "done", "Level 4")
    assert task_step.done_at == NOW - timedelta(minutes=25)
    assert [m.channel for m in message_step.messages] == ["email"]
    assert (failed.attempts, failed.last_error) == (3, "No user with that id")
    assert cancelled.text == "Cancelled: patient discharged"


def test_open_and_retried_steps_say_when_they_run(clinic_ny):
    patient = factories.patient_make(clinic_ny)
    run = run_make(clinic_ny, patient, "Retry", at=NOW - timedelta(hours=2), steps=[
        {"kind": "send_form", "attempts": 2, "last_error": "The mail server did not answer",
         "run_at": NOW + timedelta(minutes=5)},
        {"kind": "staff_task", "status": "done", "done_at": NOW - timedelta(days=1)},
    ])
    db.session.add(StaffTask(uid=new_uid(), key=new_uid(), title="Call the owner",
                             patient=patient, assignee_level=3, due_at=NOW - timedelta(hours=1),
                             source=step_source(run, 1)))
    db.session.commit()
    (item,) = timeline_for(patient)
    retried, done = item.steps
    assert retried.text == ("Tried twice, last: The mail server did not answer; trying "
                            "again 14:35")
    assert done.text == "Done Tue 1 Dec 14:30"
    assert done.tasks[0].text == "Open for anyone of level 3, overdue since Wed 2 Dec 13:30"


def test_no_runs_says_so(client, login, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    login(clinic_ny.user(1))
    page = client.get(f"/flows/patients/{patient.uid}").get_data(as_text=True)
    assert "No flows have run for Biscuit yet." in page
    assert timeline_for(patient) == []


def test_names_are_escaped(client, login, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    run_make(clinic_ny, patient, "<script>alert(1)</script>", at=NOW)
    db.session.commit()
    login(clinic_ny.user(1))
    page = client.get(f"/flows/patients/{patient.uid}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_signed_out_goes_to_sign_in_and_an_unknown_patient_is_404(client, login, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    response = client.get(f"/flows/patients/{patient.uid}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get(f"/flows/patients/{patient.uid}",
                      headers={"HX-Request": "true"}).status_code == 401
    login(clinic_ny.user(1))
    assert client.get(f"/flows/patients/{patient.uid}").status_code == 200
    missing = client.get(f"/flows/patients/{new_uid()}")
    assert missing.status_code == 404
    assert "There is no patient with that id." in missing.get_data(as_text=True)


def test_a_paired_tablet_may_read_it(app, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    full_run(clinic_ny, patient)
    tablet = paired_tablet_client(app, 1)
    response = tablet.get(f"/flows/patients/{patient.uid}")
    assert response.status_code == 200
    assert "Post-op care" in response.get_data(as_text=True)


def test_the_sheet_links_to_the_timeline(client, login, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    login(clinic_ny.user(1))
    page = client.get(f"/patients/{patient.uid}/sheet").get_data(as_text=True)
    assert f'href="/flows/patients/{patient.uid}">Flows</a>' in page


def statements_of(action) -> int:
    count = 0

    def counted(*_args):
        nonlocal count
        count += 1

    event.listen(db.engine, "before_cursor_execute", counted)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", counted)
    return count


def test_a_handful_of_queries_whatever_the_number_of_runs(client, login, clinic_ny):
    patient = factories.patient_make(clinic_ny)
    login(clinic_ny.user(1))
    full_run(clinic_ny, patient)
    db.session.expire_all()
    patient = db.session.get(type(patient), patient.id)
    one = statements_of(lambda: timeline_for(patient))
    page_one = statements_of(lambda: client.get(f"/flows/patients/{patient.uid}"))
    for n in range(9):
        full_run(clinic_ny, patient, f"Flow {n}", at=NOW - timedelta(hours=n))
    db.session.expire_all()
    patient = db.session.get(type(patient), patient.id)
    assert len(timeline_for(patient)) == 10
    db.session.expire_all()
    patient = db.session.get(type(patient), patient.id)
    ten = statements_of(lambda: timeline_for(patient))
    page_ten = statements_of(lambda: client.get(f"/flows/patients/{patient.uid}"))
    # settings, runs (with flow and version), steps, tasks (with assignee), messages
    assert one == ten <= 5
    assert page_one == page_ten
