"""Writing a staff message on the inbox page: level 4 and up, to a person or a level, once
however often the form is posted; the recipient sees who wrote it; every bad input is
refused on the form, kept as typed, with nothing stored."""

import re

import pytest
from sqlalchemy import select

from kiosk.core.audit import AuditEntry
from kiosk.core.errors import Forbidden
from kiosk.extensions import db
from kiosk.inbox.models import StaffMessage
from kiosk.inbox.selectors import ERR_RECIPIENT
from kiosk.inbox.services import ERR_LEVEL, staff_message_send
from kiosk.inbox.views import ERR_FORM_KEY
from kiosk.staff.services import user_create

from .helpers import count

KEY = "0f6e2f0a-3c55-4a43-9f57-6a3d1c1b9e21"


def sends_audited() -> int:
    """Messages sent, as the audit log has them."""
    db.session.expire_all()
    return len(db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "staff_message.send")).all())


def form_key(html: str) -> str:
    """The key the page drew for its message form."""
    return re.search(r'name="key" value="([0-9a-f-]+)"', html).group(1)


def test_a_vet_sends_a_message_to_a_colleague_once_and_it_says_who_wrote_it(
        clinic, client, login, frozen_clock):
    login(clinic.user(5))
    page = client.get("/inbox/").text
    assert "Send a message" in page and f'value="user:{clinic.user(3).id}"' in page
    assert 'value="level:3"' in page and "Every Nurse (level 3)" in page
    data = {"to": f"user:{clinic.user(3).id}", "subject": "Owner's form arrived",
            "body": "Biscuit's consent is signed.", "key": form_key(page)}
    sent = client.post("/inbox/messages", data=data)
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/inbox/")
    assert client.post("/inbox/messages", data=data).status_code == 303  # posted twice
    message = db.session.scalars(select(StaffMessage)).one()
    assert (message.subject, message.body, message.to_user_id, message.source) == (
        "Owner's form arrived", "Biscuit's consent is signed.", clinic.user(3).id, "staff:u_5")
    audit = db.session.scalars(select(AuditEntry).where(
        AuditEntry.entity_uid == message.uid)).one()
    assert audit.action == "staff_message.send" and audit.user_id == clinic.user(5).id
    login(clinic.user(3))
    inbox = client.get("/inbox/").text
    assert "Owner&#39;s form arrived" in inbox and "From Level 5" in inbox
    assert "Send a message" not in inbox  # a nurse does not write them
    row = client.post(f"/inbox/messages/{message.uid}/read", headers={"HX-Request": "true"})
    assert row.status_code == 200 and "From Level 5" in row.text and "Mark read" not in row.text


def test_a_message_to_a_level(clinic, client, login, frozen_clock):
    login(clinic.user(4))
    sent = client.post("/inbox/messages", data={"to": "level:3", "subject": "Kennels at 4",
                                                "key": KEY})
    assert sent.status_code == 303
    message = db.session.scalars(select(StaffMessage)).one()
    assert (message.to_user_id, message.to_level, message.body) == (None, 3, None)


@pytest.mark.parametrize("data, error", [
    ({"to": "level:3", "subject": "  "}, "The subject is required."),
    ({"to": "level:3", "subject": "x" * 201}, "The subject is longer than 200 characters."),
    ({"to": "", "subject": "Hello"}, ERR_RECIPIENT),
    ({"to": "user:99999", "subject": "Hello"}, ERR_RECIPIENT),
    ({"to": "everyone", "subject": "Hello"}, ERR_RECIPIENT),
    ({"to": "level:9", "subject": "Hello"}, ERR_LEVEL),
    ({"to": "level:3", "subject": "Hello", "key": "remind:1"}, ERR_FORM_KEY),
    ({"to": "level:3", "subject": "Hello", "key": ""}, ERR_FORM_KEY),
])
def test_bad_input_is_refused_on_the_form_kept_as_typed_and_nothing_is_stored(
        clinic, client, login, frozen_clock, data, error):
    login(clinic.user(6))
    page = client.post("/inbox/messages", data={"key": KEY, "body": "Kept <as> typed", **data})
    assert page.status_code == 400
    assert '<p class="field-error" id="compose-error" role="alert">' in page.text
    assert error.replace("'", "&#39;") in page.text
    assert "Kept &lt;as&gt; typed</textarea>" in page.text
    assert count(StaffMessage) == 0 and sends_audited() == 0
    assert re.fullmatch(r"[0-9a-f-]{36}", form_key(page.text))  # sending again can work


def test_an_inactive_person_is_not_a_recipient(clinic, client, login, frozen_clock):
    gone = user_create(name="Gone", level=3, username="gone", password="password-gone")
    gone.active = False
    db.session.commit()
    login(clinic.user(6))
    page = client.post("/inbox/messages", data={"to": f"user:{gone.id}", "subject": "Hi",
                                                "key": KEY})
    assert page.status_code == 400 and ERR_RECIPIENT in page.text
    assert f'value="user:{gone.id}"' not in page.text and count(StaffMessage) == 0


def test_below_level_4_the_form_is_refused_and_nothing_is_stored(clinic, client, login,
                                                                 frozen_clock):
    login(clinic.user(3))
    page = client.post("/inbox/messages", data={"to": "level:5", "subject": "Hi", "key": KEY})
    assert page.status_code == 403 and "You need level 4 to send staff messages" in page.text
    assert count(StaffMessage) == 0
    with pytest.raises(Forbidden):
        staff_message_send(key="k", subject="Hi", to_level=5, sender=clinic.user(3))
    db.session.rollback()
    assert count(StaffMessage) == 0
