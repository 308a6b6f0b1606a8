"""The inbox page: a person's and their level's tasks and messages (nobody else's), times
on the clinic's clock, completing and reading by a plain post and by htmx, refusals shown
with nothing changed, the nav's count, and the CSRF token the forms need."""

from datetime import timedelta

from kiosk import create_app
from kiosk.core.auth import SESSION_KEY
from kiosk.extensions import db
from kiosk.inbox.models import StaffMessageRead, StaffTask
from kiosk.inbox.services import staff_task_complete
from tests import factories

from .helpers import count, message_make, task_make

HTMX = {"HX-Request": "true"}


def test_the_inbox_lists_the_persons_and_their_levels_tasks_overdue_first(
        clinic, client, login, frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit")
    task_make(key="mine", title="Call owner", assignee=clinic.user(3), due_in=timedelta(hours=3))
    task_make(key="role", title="Bloods", assignee_level=3, patient=patient,
              due_in=-timedelta(minutes=30), detail="EDTA tube")
    task_make(key="other", title="Walk Rex", assignee=clinic.user(2))
    task_make(key="level2", title="Clean kennels", assignee_level=2)
    done = task_make(key="done", title="Weigh Biscuit", assignee_level=3)
    staff_task_complete(task=done, user=clinic.user(3))
    db.session.commit()
    login(clinic.user(3))
    page = client.get("/inbox/")
    html = page.text
    assert page.status_code == 200
    assert html.index("Bloods") < html.index("Call owner")  # overdue first
    assert "Overdue" in html and "EDTA tube" in html and "For every Nurse (level 3)" in html
    assert "For you" in html and "Due Sun 22 Nov 15:00" in html
    assert f'href="/patients/{patient.uid}/sheet"' in html
    assert "Walk Rex" not in html and "Clean kennels" not in html
    assert "Done in the last 24 hours (1)" in html and "Weigh Biscuit" in html
    assert "2 open tasks, 1 overdue" in html


def test_times_are_on_the_clinics_clock(app, client, login, frozen_clock):
    clinic = factories.clinic_make(timezone="America/New_York")  # UTC-5 in November
    task_make(assignee_level=1, due_in=timedelta(hours=2))
    login(clinic.user(1))
    assert "Due Sun 22 Nov 09:00" in client.get("/inbox/").text


def test_messages_to_the_person_and_their_level_unread_first(clinic, client, login,
                                                            frozen_clock):
    message_make(key="a", subject="Old and read", to_user=clinic.user(2))
    frozen_clock.advance(minutes=5)
    message_make(key="b", subject="For the assistants", to_level=2)
    message_make(key="c", subject="For someone else", to_user=clinic.user(3))
    message_make(key="d", subject="For the nurses", to_level=3)
    login(clinic.user(2))
    read = client.post("/inbox/messages/" + first_uid("Old and read") + "/read")
    assert read.status_code == 303
    html = client.get("/inbox/").text
    assert html.index("For the assistants") < html.index("Old and read")
    assert "For someone else" not in html and "For the nurses" not in html
    assert "1 unread message" in html and html.count("Mark read") == 1


def test_completing_a_task_by_plain_post_and_by_htmx(clinic, client, login, frozen_clock):
    plain = task_make(key="a", title="Bloods", assignee_level=3)
    swapped = task_make(key="b", title="Urine sample", assignee=clinic.user(3))
    login(clinic.user(3))
    answer = client.post(f"/inbox/tasks/{plain.uid}/complete")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/inbox/")
    row = client.post(f"/inbox/tasks/{swapped.uid}/complete", headers=HTMX)
    assert row.status_code == 200 and "HX-Request" in row.headers["Vary"]
    assert row.text.lstrip().startswith(f'<li id="task-{swapped.uid}"')
    assert "Done" in row.text and "by Level 3" in row.text and "Mark done" not in row.text
    db.session.expire_all()
    assert {plain.status, swapped.status} == {"done"}
    assert plain.done_by_id == swapped.done_by_id == clinic.user(3).id


def test_a_closed_task_is_refused_clearly_and_nothing_changes(clinic, client, login,
                                                              frozen_clock):
    task = task_make(assignee_level=3)
    staff_task_complete(task=task, user=clinic.user(4))
    db.session.commit()
    login(clinic.user(3))
    frozen_clock.advance(minutes=5)
    page = client.post(f"/inbox/tasks/{task.uid}/complete")
    assert page.status_code == 409
    assert "This task is already done: nothing was changed." in page.text
    row = client.post(f"/inbox/tasks/{task.uid}/complete", headers=HTMX)
    assert row.status_code == 422 and "already done" in row.text
    db.session.expire_all()
    assert task.done_by_id == clinic.user(4).id and task.done_at == frozen_clock.now - \
        timedelta(minutes=5)


def test_someone_elses_task_is_refused_clearly_and_nothing_changes(clinic, client, login,
                                                                   frozen_clock):
    task = task_make(assignee=clinic.user(2))
    message = message_make(to_user=clinic.user(2))
    login(clinic.user(3))
    page = client.post(f"/inbox/tasks/{task.uid}/complete")
    assert page.status_code == 403 and "Only the person it is for" in page.text
    row = client.post(f"/inbox/tasks/{task.uid}/complete", headers=HTMX)
    assert row.status_code == 422 and "Only the person it is for" in row.text
    read = client.post(f"/inbox/messages/{message.uid}/read")
    assert read.status_code == 403 and "This message was not sent to you." in read.text
    db.session.expire_all()
    assert task.status == "open" and message.read_at is None
    assert client.post("/inbox/tasks/nope/complete").status_code == 404


def test_reading_a_roles_message_by_htmx(clinic, client, login, frozen_clock):
    message = message_make(to_level=1)
    login(clinic.user(1))
    row = client.post(f"/inbox/messages/{message.uid}/read", headers=HTMX)
    assert row.status_code == 200
    assert row.text.lstrip().startswith(f'<li id="message-{message.uid}"')
    assert "Mark read" not in row.text and count(StaffMessageRead) == 1


def test_the_nav_counts_what_waits_for_signed_in_staff(clinic, client, login, frozen_clock):
    task_make(key="a", assignee_level=2)
    task_make(key="b", assignee=clinic.user(2))
    message_make(to_level=2)
    assert client.get("/inbox/").status_code == 302  # signed out: the sign-in page
    login(clinic.user(2))
    html = client.get("/patients/").text
    assert 'href="/inbox/"' in html
    assert '<span class="count-badge">3<span class="sr-only"> waiting</span></span>' in html
    login(clinic.user(5))
    html = client.get("/patients/").text
    assert 'href="/inbox/"' in html and "count-badge" not in html


def test_the_forms_need_their_csrf_token(clinic, tmp_path, frozen_clock):
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        user = factories.clinic_make().user(3)
        task = task_make(assignee_level=3)
        guarded = app.test_client()
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=user, auth="password")
        db.session.commit()
        with guarded.session_transaction() as session:
            session["user_id"], session["auth"], session[SESSION_KEY] = user.id, "password", key
        assert guarded.post(f"/inbox/tasks/{task.uid}/complete").status_code == 400
        assert count_open() == 1
        page = guarded.get("/inbox/").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert guarded.post(f"/inbox/tasks/{task.uid}/complete",
                            data={"csrf_token": token}).status_code == 303
        assert count_open() == 0
        db.session.remove()
        db.engine.dispose()


def count_open() -> int:
    """Open staff tasks as stored."""
    db.session.expire_all()
    return len(db.session.query(StaffTask).filter_by(status="open").all())


def first_uid(subject: str) -> str:
    """The uid of the message with this subject."""
    from kiosk.inbox.models import StaffMessage

    return db.session.query(StaffMessage).filter_by(subject=subject).one().uid


def test_a_tablet_nobody_signed_in_on_is_sent_to_sign_in(clinic, client, frozen_clock):
    from kiosk.devices.services import device_provision

    task_make(assignee_level=1)
    device, _ = device_provision(name="Blue", colour="blue")
    db.session.commit()
    with client.session_transaction() as session:
        session["tablet_id"], session["tablet_gen"] = device.id, device.session_generation or 0
    page = client.get("/inbox/")
    assert page.status_code == 302
    assert page.headers["Location"].endswith("/login?next=/inbox/")
    sign_in = client.get(page.headers["Location"]).text
    assert "On a shared tablet" in sign_in and "Bloods" not in sign_in
