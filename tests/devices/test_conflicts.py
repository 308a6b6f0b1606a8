"""Reviewing a tablet's conflicts: the page names the patient, the task (order and due time
in the clinic's zone), both values and both people; keep, replace and note each change
things through their services, audited and checked; a bad answer changes nothing."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from kiosk.clinic.selectors import settings_get
from kiosk.core.audit import AuditEntry
from kiosk.devices.models import SyncOp
from kiosk.devices.review import conflict_note_text
from kiosk.devices.selectors import problem_card
from kiosk.devices.services import device_add, device_pair
from kiosk.extensions import db
from kiosk.treatments.models import Note, Task, TaskCompletion
from kiosk.treatments.services import task_complete
from tests import factories

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def conflict(client, clinic, frozen_clock):
    """Level 5 recorded a temperature of 38.9 at 10:02 on the desktop; the tablet Blue #2,
    offline, had Level 3 record 38.4 at 10:05 for the same task: a conflict."""
    frozen_clock.set(START)
    settings_get().timezone = "Europe/Paris"
    db.session.commit()
    patient = factories.patient_make(clinic, name="Biscuit")
    order = factories.order_make(clinic, patient, name="Temperature", kind="observation",
                                 dose=None, units=None, route=None, value_type="number",
                                 every_hours=4)
    task = db.session.scalar(select(Task).where(Task.order_id == order.id)
                             .order_by(Task.due_at).offset(1).limit(1))  # due 13:00 UTC
    frozen_clock.set(task.due_at.replace(minute=2))
    task_complete(task=task, user=clinic.user(5), value="38.9", note="panting")
    db.session.commit()
    device, code = device_add(actor=clinic.user(6), name="Ward 1", colour="blue", number=2)
    device, token = device_pair(code=code)
    db.session.commit()
    frozen_clock.set(task.due_at.replace(minute=6))
    sent = task.due_at.replace(minute=5).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = client.post("/api/sync", headers={"Authorization": f"Bearer {token}"}, json={
        "device": device.public_id, "sent_at": frozen_clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "outbox": {"pending": 1}, "ops": [{
            "id": str(uuid.uuid4()), "seq": 1, "name": "task.complete", "at": sent,
            "user": clinic.user(3).public_id,
            "args": {"task": task.uid, "value": "38.4", "note": "ate well"}}]}).get_json()
    assert answer["results"][0]["status"] == "conflict"
    record = db.session.scalar(select(SyncOp).where(SyncOp.device_id == device.id))
    return {"device": device, "task": task, "op": record, "patient": patient}


def state(conflict) -> tuple:
    """Everything an answer could change: the task's standing values, the completions,
    the notes, the op's review mark and the audit log's length."""
    db.session.expire_all()
    task = db.session.get(Task, conflict["task"].id)
    completions = db.session.execute(select(
        TaskCompletion.user_id, TaskCompletion.value, TaskCompletion.duplicate)
        .where(TaskCompletion.task_id == task.id).order_by(TaskCompletion.id)).all()
    notes = db.session.scalars(select(Note.text)).all()
    op = db.session.get(SyncOp, conflict["op"].id)
    return ((task.value, task.note, task.done_by_id), tuple(completions), tuple(notes),
            op.dismissed_at, db.session.scalar(select(func.count(AuditEntry.id))))


def url(conflict, answer: str) -> str:
    return f"/devices/{conflict['device'].id}/problems/{conflict['op'].id}/{answer}"


def test_the_page_says_patient_task_both_values_and_both_people(client, clinic, login, conflict):
    login(clinic.user(1))
    page = client.get(f"/devices/{conflict['device'].id}/problems").get_data(as_text=True)
    card = page.split(f'id="problem-{conflict["op"].id}"')[1].split("</article>")[0]
    due = conflict["task"].due_at  # 13:00 UTC, 14:00 in Paris
    assert due.hour == 13
    assert "Biscuit" in card and "Task done: Temperature, due Sun 22 Nov 14:00" in card
    assert "Level 5" in card and "38.9" in card and "panting" in card
    assert "Level 3" in card and "38.4" in card and "ate well" in card
    assert "14:02" in card and "14:05" in card and "Blue #2" in card
    assert "u_3" not in card and "u_5" not in card and "task.complete" not in card
    # Level 1 may look but not answer.
    assert "Keep the server" not in card
    login(clinic.user(4))
    card = client.get(f"/devices/{conflict['device'].id}/problems").get_data(as_text=True)
    assert "Keep the server's" in card and "Replace with the tablet's" in card
    assert "Add the tablet's as a note" in card and 'name="csrf_token"' in card


def test_keep_leaves_the_record_and_marks_the_conflict_reviewed(client, clinic, login, conflict):
    login(clinic.user(4))
    before = state(conflict)
    response = client.post(url(conflict, "keep"))
    assert response.status_code == 302
    after = state(conflict)
    assert after[:3] == before[:3] and after[3] is not None
    assert db.session.scalar(select(AuditEntry.action).order_by(AuditEntry.id.desc())
                             .limit(1)) == "sync.dismiss"
    page = client.get(f"/devices/{conflict['device'].id}/problems").get_data(as_text=True)
    assert "Kept the server" in page and f'id="problem-{conflict["op"].id}"' not in page


def test_replace_makes_the_tablets_completion_stand_once(client, clinic, login, conflict):
    login(clinic.user(4))
    response = client.post(url(conflict, "replace"))
    assert response.status_code == 302
    (value, note, by), completions, notes, reviewed, _ = state(conflict)
    assert (value, note, by) == ("38.4", "ate well", clinic.user(3).id)
    assert completions == ((clinic.user(5).id, "38.9", True), (clinic.user(3).id, "38.4", False))
    assert reviewed is not None and notes == ()
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions[-2:] == ["task.completion_stand", "sync.dismiss"]
    # Done once: the task is still one task, done.
    assert db.session.get(Task, conflict["task"].id).status == "done"


def test_note_adds_the_tablets_entry_to_the_patients_notes(client, clinic, login, conflict):
    login(clinic.user(4))
    before = state(conflict)
    assert client.post(url(conflict, "note")).status_code == 302
    after = state(conflict)
    assert after[0] == before[0] and after[1] == before[1] and after[3] is not None
    (text,) = after[2]
    assert text == (
        "From Blue #2 (a sync conflict, reviewed): Temperature due 22 Nov 14:00, by Level 3 "
        "at 22 Nov 14:05. Value: 38.4; Note: ate well. The record kept by Level 5 at "
        "22 Nov 14:02: Value: 38.9; Note: panting.")
    assert text == conflict_note_text(problem_card(conflict["device"], conflict["op"].id))
    note = db.session.scalar(select(Note))
    assert note.user_id == clinic.user(4).id and note.patient_id == conflict["patient"].id


@pytest.mark.parametrize("answer", ["keep", "replace", "note"])
def test_an_answer_to_a_reviewed_conflict_is_refused_and_changes_nothing(
        client, clinic, login, conflict, answer):
    login(clinic.user(4))
    assert client.post(url(conflict, "keep")).status_code == 302
    before = state(conflict)
    response = client.post(url(conflict, answer))
    assert response.status_code == 409
    assert "This change was already reviewed" in response.get_data(as_text=True)
    assert state(conflict) == before


def test_an_unknown_conflict_or_answer_is_refused_and_changes_nothing(
        client, clinic, login, conflict):
    login(clinic.user(4))
    other, _ = device_add(actor=clinic.user(6), name="Ward 2", colour="red", number=3)
    db.session.commit()
    before = state(conflict)
    device = conflict["device"]
    missing = client.post(f"/devices/{device.id}/problems/{conflict['op'].id + 99}/keep")
    assert missing.status_code == 404
    assert "There is no such conflict or refused change" in missing.get_data(as_text=True)
    wrong_device = client.post(f"/devices/{other.id}/problems/{conflict['op'].id}/keep")
    assert wrong_device.status_code == 404
    bad = client.post(url(conflict, "delete"))
    assert bad.status_code == 404 and "Choose keep, replace or note" in bad.get_data(as_text=True)
    assert state(conflict) == before


def test_only_a_task_done_twice_can_be_replaced(client, clinic, login, conflict):
    """A note on a discharged patient is a conflict too, but there is no completion to
    put in the server's place."""
    login(clinic.user(4))
    conflict["op"].name, conflict["op"].args = "note.add", {"text": "walked"}
    db.session.commit()
    before = state(conflict)
    response = client.post(url(conflict, "replace"))
    assert response.status_code == 409
    assert "Only a task done twice" in response.get_data(as_text=True)
    assert state(conflict) == before


def test_answers_need_level_4_and_the_forms_token(app, client, clinic, login, conflict):
    login(clinic.user(3))
    before = state(conflict)
    response = client.post(url(conflict, "replace"))
    assert response.status_code == 403 and "You need level 4" in response.get_data(as_text=True)
    assert state(conflict) == before
    app.config["WTF_CSRF_ENABLED"] = True
    login(clinic.user(6))
    assert client.post(url(conflict, "keep")).status_code == 400
    assert state(conflict) == before


def test_a_task_done_after_its_order_was_stopped_shows_the_stop(client, clinic, login, conflict):
    """The tablet's completion of a stopped order is recorded on the task: the server's
    side is the stop (who, when, why), never the tablet's own entry again."""
    from kiosk.treatments.services import order_stop

    task = conflict["task"]
    later = db.session.scalar(select(Task).where(Task.order_id == task.order_id,
                                                 Task.due_at > task.due_at)
                              .order_by(Task.due_at).limit(1))
    order_stop(order=task.order, user=clinic.user(5), reason="fever resolved")
    db.session.commit()
    device = conflict["device"]
    record = SyncOp(device_id=device.id, seq=2, op_id=str(uuid.uuid4()), name="task.complete",
                    args={"task": later.uid, "value": "37.9"}, user_ref=clinic.user(3).public_id,
                    status="conflict", result={"task": later.uid, "conflict": "order_stopped"},
                    patient_uid=conflict["patient"].uid)
    db.session.add(record)
    db.session.commit()
    card = problem_card(device, record.id)
    assert card.server.summary == "Temperature was stopped: fever resolved"
    assert card.server.person == "Level 5" and card.tablet.person == "Level 3"
    assert not card.can_replace and card.can_note
    login(clinic.user(4))
    page = client.get(f"/devices/{device.id}/problems").get_data(as_text=True)
    assert "Temperature was stopped: fever resolved" in page
