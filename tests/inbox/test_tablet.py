"""The inbox on a shared tablet: only the person who signed in there with their PIN sees it
(the tablet's own session, its token or a wall display's are refused with nothing changed),
the tablet's top bar counts what waits for that person, messages are read and tasks done
from the tablet, and what the tablet's banner asks for is that person's only."""

import pytest

from kiosk.devices.services import device_provision, display_create
from kiosk.extensions import db
from kiosk.inbox.models import StaffMessageRead
from kiosk.inbox.services import ERR_MESSAGE_NOT_YOURS

from .helpers import count, message_make, task_make

HTMX = {"HX-Request": "true"}
JSON = {"Accept": "application/json"}


@pytest.fixture
def tablet(clinic, client):
    """This test client is a paired tablet (its tablet session, claimed by its token)."""
    device, token = device_provision(name="Ward", colour="blue", number=1)
    db.session.commit()
    assert client.post("/tablet/claim", headers={"Authorization": f"Bearer {token}"}
                       ).status_code == 200
    device.token = token
    return device


def pin_sign_in(client, user, pin: str) -> None:
    """Sign in on the tablet with the PIN form, as the sign-in page posts it."""
    answer = client.post("/login/pin", data={"user_id": str(user.id), "pin": pin,
                                             "next": "/inbox/"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/inbox/"


def stored_state(task, message) -> tuple:
    """The task's status and the message's reads, as stored."""
    db.session.expire_all()
    return task.status, task.done_by_id, message.read_at, count(StaffMessageRead)


def test_a_tablet_without_a_signed_in_person_is_refused_and_nothing_changes(
        clinic, client, tablet, frozen_clock):
    task = task_make(assignee_level=1)
    message = message_make(to_level=1)
    page = client.get("/inbox/")
    assert page.status_code == 302 and "/login?next=/inbox/" in page.headers["Location"]
    assert client.get("/inbox/notice", headers=JSON).status_code == 401
    assert client.get(f"/inbox/notice?message={message.uid}", headers=JSON).status_code == 401
    assert client.post(f"/inbox/tasks/{task.uid}/complete", headers=HTMX).status_code == 401
    assert client.post(f"/inbox/messages/{message.uid}/read").status_code == 302
    assert stored_state(task, message) == ("open", None, None, 0)


def test_a_tablet_token_alone_is_refused(clinic, app, tablet, frozen_clock):
    message = message_make(to_level=1)
    bare = app.test_client()  # no cookie: the bearer token is all it has
    bearer = {"Authorization": f"Bearer {tablet.token}", **JSON}
    assert bare.get("/inbox/notice", headers=bearer).status_code == 401
    assert bare.get(f"/inbox/notice?message={message.uid}", headers=bearer).status_code == 401
    assert bare.post(f"/inbox/messages/{message.uid}/read", headers=bearer).status_code == 401
    assert count(StaffMessageRead) == 0


def test_a_wall_display_is_refused(clinic, app, frozen_clock):
    message = message_make(to_level=1)
    _, token = display_create(actor=clinic.user(6), name="ICU wall", board_id=clinic.board.id)
    db.session.commit()
    display = app.test_client()
    assert display.post("/display/claim", json={"token": token}).status_code == 200
    assert display.get("/inbox/").status_code == 302
    assert display.get(f"/inbox/notice?message={message.uid}", headers=JSON).status_code == 401
    by_token = app.test_client()
    assert by_token.get("/inbox/notice", headers={"Authorization": f"Bearer {token}",
                                                  **JSON}).status_code == 401
    assert display.post(f"/inbox/messages/{message.uid}/read",
                        headers=HTMX).status_code == 401
    assert count(StaffMessageRead) == 0


def test_the_person_signed_in_with_their_pin_reads_and_completes_on_the_tablet(
        clinic, client, tablet, frozen_clock):
    task = task_make(title="Call the owner", assignee=clinic.user(3))
    message = message_make(subject="Consent form arrived", to_level=3)
    message_make(key="other", subject="For the vets", to_level=5)
    pin_sign_in(client, clinic.user(3), "3333")
    page = client.get("/inbox/")
    assert page.status_code == 200
    assert "Call the owner" in page.text and "Consent form arrived" in page.text
    assert "For the vets" not in page.text
    read = client.post(f"/inbox/messages/{message.uid}/read", headers=HTMX)
    assert read.status_code == 200 and "Mark read" not in read.text
    done = client.post(f"/inbox/tasks/{task.uid}/complete", headers=HTMX)
    assert done.status_code == 200 and "by Level 3" in done.text
    db.session.expire_all()
    assert task.status == "done" and task.done_by_id == clinic.user(3).id
    assert count(StaffMessageRead) == 1


def test_the_tablets_top_bar_counts_for_the_person_signed_in_on_it(clinic, client, tablet,
                                                                   frozen_clock):
    task_make(key="a", assignee=clinic.user(3))
    message_make(to_level=3)
    message_make(key="b", to_level=2)
    before = client.get("/patients/").text
    assert 'class="nav-inbox"' in before and 'data-inbox-count="0"' in before
    assert "data-inbox-for" not in before
    pin_sign_in(client, clinic.user(3), "3333")
    html = client.get("/patients/").text
    assert 'data-inbox-count="2" data-inbox-for="u_3"' in html
    assert "<span data-inbox-number>2</span>" in html
    assert 'id="tpl-inbox-notice"' in html and 'data-notice-url="/inbox/notice"' in html


def test_the_banner_gets_the_subject_of_the_persons_own_messages_only(clinic, client, tablet,
                                                                      frozen_clock):
    mine = message_make(subject="<b>Owner</b> called back", to_user=clinic.user(3))
    theirs = message_make(key="x", subject="For the vets", to_level=5)
    pin_sign_in(client, clinic.user(3), "3333")
    answer = client.get(f"/inbox/notice?message={mine.uid}", headers=JSON)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.json == {"for": "u_3", "count": 1, "message": {
        "uid": mine.uid, "subject": "<b>Owner</b> called back",
        "url": f"/inbox/#message-{mine.uid}"}}
    refused = client.get(f"/inbox/notice?message={theirs.uid}", headers=JSON)
    assert refused.status_code == 403 and refused.json["message"] == ERR_MESSAGE_NOT_YOURS
    assert "For the vets" not in refused.text
    assert client.get("/inbox/notice?message=nope", headers=JSON).status_code == 404
    assert client.get("/inbox/notice", headers=JSON).json == {"for": "u_3", "count": 1}
    page = client.get("/inbox/").text  # the subject is text on the page, never markup
    assert "&lt;b&gt;Owner&lt;/b&gt; called back" in page and "<b>Owner</b>" not in page
    db.session.expire_all()
    assert mine.read_at is None  # asking is not reading


def test_after_locking_the_tablet_its_inbox_is_refused_again(clinic, client, tablet,
                                                            frozen_clock):
    message_make(to_level=3)
    pin_sign_in(client, clinic.user(3), "3333")
    assert client.get("/inbox/").status_code == 200
    client.post("/logout")  # what the lock screen posts when it locks
    assert client.get("/inbox/").status_code == 302
    assert client.get("/inbox/notice", headers=JSON).status_code == 401
