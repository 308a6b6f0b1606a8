"""A staff message pokes the tablets its recipients are signed in on with their PIN, each in
its own room, with the message's uid and whom it is for and nothing else; no other tablet,
no locked, revoked or re-paired one, and nothing at all when the change rolls back."""

import pytest
from flask import g
from sqlalchemy import event

from kiosk.core.events import DomainEvent
from kiosk.devices.services import (
    device_pair,
    device_pairing_start,
    device_provision,
    device_revoke,
)
from kiosk.extensions import db, socketio
from kiosk.inbox.services import staff_message_send
from kiosk.live.pokes import pokes_for
from kiosk.staff.services import user_create

from ..inbox.helpers import message_make


def fresh_request_cache() -> None:
    """Forget who the last request was: the test's app context outlives requests, and a
    Socket.IO connect (unlike a page, see create_app) does not clear it by itself."""
    for key in ("user", "sign_in", "display", "tablet"):
        g.pop(key, None)


class Tablet:
    """A paired tablet: its browser (tablet session, and a PIN sign-in when someone signed
    in on it) and its live connection, in its own room."""

    def __init__(self, app, number: int, person=None, pin: str | None = None):
        self.device, self.token = device_provision(name="Ward", colour="blue", number=number)
        db.session.commit()
        self.web = app.test_client()
        assert self.web.post("/tablet/claim", headers={"Authorization": f"Bearer {self.token}"}
                             ).status_code == 200
        if person is not None:
            self.sign_in(person, pin)
        self.app = app
        self.room = f"device:{self.device.id}"
        self.connect()

    def connect(self) -> None:
        """Open the tablet's live connection (again) and join its own room."""
        fresh_request_cache()
        self.sio = socketio.test_client(self.app, flask_test_client=self.web,
                                        auth={"token": self.token})
        assert self.sio.emit("join", {"rooms": [self.room]}, callback=True)["joined"] == [
            self.room]

    def sign_in(self, person, pin: str) -> None:
        """Sign in with the PIN form, as the sign-in page posts it."""
        answer = self.web.post("/login/pin", data={"user_id": str(person.id), "pin": pin})
        assert answer.status_code == 302, answer.text

    def inbox_pokes(self) -> list[dict]:
        """The inbox pokes heard since last asked, without their version."""
        return [{k: v for k, v in evt["args"][0].items() if k != "version"}
                for evt in self.sio.get_received()
                if evt["name"] == "poke" and evt["args"][0].get("topic") == "inbox"]


@pytest.fixture
def tablets(app):
    """Make tablets: tablets(number, person, pin); their connections close afterwards."""
    made: list[Tablet] = []

    def make(number: int, person=None, pin: str | None = None) -> Tablet:
        made.append(Tablet(app, number, person, pin))
        return made[-1]

    yield make
    for tablet in made:
        if tablet.sio.is_connected():
            tablet.sio.disconnect()


def inbox_rooms(*uids: str) -> list[tuple[str, dict]]:
    """The inbox pokes one commit of these messages calls for (no version)."""
    return [(room, {k: v for k, v in poke.items() if k != "version"})
            for room, poke in pokes_for([DomainEvent("staff_message.sent", {"message": uid})
                                         for uid in uids]) if poke["topic"] == "inbox"]


def test_the_recipients_tablet_is_poked_and_no_other(clinic, tablets, login, socketio_client,
                                                     frozen_clock):
    vet, nurse = clinic.user(5), clinic.user(3)
    vets = tablets(1, vet, "555555")
    nurses = tablets(2, nurse, "3333")
    nobodys = tablets(3)
    login(vet)  # the vet's desktop too: it is not a tablet, and joins no tablet's room
    fresh_request_cache()
    desktop = socketio_client()
    assert desktop.emit("join", {"rooms": [vets.room]}, callback=True)["refused"] == [vets.room]
    message = message_make(subject="Owner's form arrived", to_user=vet)
    assert vets.inbox_pokes() == [{"topic": "inbox", "message": message.uid,
                                   "for": vet.public_id}]
    assert nurses.inbox_pokes() == [] and nobodys.inbox_pokes() == []
    assert [evt for evt in desktop.get_received() if evt["name"] == "poke"] == []


def test_a_tablet_never_joins_another_tablets_room(clinic, tablets, frozen_clock):
    vets = tablets(1, clinic.user(5), "555555")
    other = tablets(2)
    ack = other.sio.emit("join", {"rooms": [vets.room]}, callback=True)
    assert ack == {"joined": [], "refused": [vets.room]}
    message_make(to_user=clinic.user(5))
    assert other.inbox_pokes() == []


def test_a_levels_message_reaches_each_tablet_of_that_level_for_its_own_person(
        clinic, tablets, frozen_clock):
    first = clinic.user(3)
    second = user_create(name="Second nurse", level=3, pin="3434", username="nurse2",
                         password="password-nurse2")
    db.session.commit()
    one, two = tablets(1, first, "3333"), tablets(2, second, "3434")
    vets = tablets(3, clinic.user(5), "555555")
    message = message_make(subject="Kennels at 4", to_level=3)
    assert one.inbox_pokes() == [{"topic": "inbox", "message": message.uid,
                                  "for": first.public_id}]
    assert two.inbox_pokes() == [{"topic": "inbox", "message": message.uid,
                                  "for": second.public_id}]
    assert vets.inbox_pokes() == []


def test_nothing_is_sent_when_the_transaction_rolls_back(clinic, tablets, frozen_clock):
    vets = tablets(1, clinic.user(5), "555555")
    staff_message_send(key="k", subject="Never sent", to_user=clinic.user(5))
    db.session.rollback()
    assert vets.inbox_pokes() == []
    message_make(key="k2", subject="Sent", to_user=clinic.user(5))  # the room still works
    assert len(vets.inbox_pokes()) == 1


def test_a_locked_tablet_hears_nothing(clinic, tablets, frozen_clock):
    vets = tablets(1, clinic.user(5), "555555")
    assert vets.web.post("/logout").status_code == 302  # the lock screen's sign-out
    assert not vets.sio.is_connected()  # the sign-in's connection closed; the page reloads
    vets.connect()  # as the tablet alone
    db.session.expire_all()
    message = message_make(to_user=clinic.user(5))
    assert inbox_rooms(message.uid) == []
    assert vets.inbox_pokes() == []


def test_revoked_and_re_paired_tablets_and_inactive_people_hear_nothing(clinic, tablets,
                                                                        frozen_clock):
    manager, vet = clinic.user(6), clinic.user(5)
    revoked, repaired, kept = (tablets(n, vet, "555555") for n in (1, 2, 3))
    message = message_make(to_user=vet)
    assert sorted(room for room, _ in inbox_rooms(message.uid)) == sorted(
        [revoked.room, repaired.room, kept.room])
    frozen_clock.advance(minutes=1)
    device_revoke(actor=manager, device=revoked.device)
    device_pair(code=device_pairing_start(actor=manager, device=repaired.device))
    db.session.commit()
    assert inbox_rooms(message.uid) == [(kept.room, {"topic": "inbox", "message": message.uid,
                                                     "for": vet.public_id})]
    vet.active = False
    db.session.commit()
    assert inbox_rooms(message.uid) == []


def test_a_sign_in_past_its_lifetime_is_not_a_tablets_person(app, clinic, tablets,
                                                              frozen_clock):
    vets = tablets(1, clinic.user(5), "555555")
    message = message_make(to_user=clinic.user(5))
    assert [room for room, _ in inbox_rooms(message.uid)] == [vets.room]
    frozen_clock.advance(seconds=app.permanent_session_lifetime.total_seconds() + 1)
    assert inbox_rooms(message.uid) == []


def test_many_messages_to_many_tablets_take_the_same_queries_as_one(clinic, tablets,
                                                                    frozen_clock):
    for number in range(1, 4):
        tablets(number, clinic.user(3), "3333")
    one = message_make(key="one", to_level=3).uid
    many = [message_make(key=f"m{n}", to_user=clinic.user(3)).uid for n in range(10)]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        single = inbox_rooms(one)
        asked_once = len(statements)
        several = inbox_rooms(one, *many)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(single) == 3 and len(several) == 33
    assert asked_once == 2 and len(statements) - asked_once == asked_once


def test_only_the_messages_id_and_its_person_travel(clinic, tablets, frozen_clock):
    vets = tablets(1, clinic.user(5), "555555")
    message = message_make(subject="Biscuit's bloods are back", body="ALT 412",
                           to_user=clinic.user(5), patient=None)
    heard = [evt["args"][0] for evt in vets.sio.get_received() if evt["name"] == "poke"]
    # The whole poke, field by field: nothing of the subject or body can ride along (a
    # search for "412" in it would also find the digits of a random uid or a version).
    (poke,) = heard
    assert poke == {"topic": "inbox", "message": message.uid,
                    "for": clinic.user(5).public_id, "version": poke["version"]}
    assert isinstance(poke["version"], int)


def test_a_message_for_no_one_signed_in_anywhere_pokes_no_room(clinic, frozen_clock):
    message = message_make(to_level=2)
    assert inbox_rooms(message.uid) == []
    assert pokes_for([DomainEvent("staff_message.sent", {"message": "no-such-uid"})]) == []


def test_a_person_may_be_on_two_tablets_and_a_tablet_has_one_person(clinic, tablets, frozen_clock):
    vets = tablets(1, clinic.user(5), "555555")
    nurses = tablets(2, clinic.user(3), "3333")
    frozen_clock.advance(minutes=5)
    # The vet now signs in on the nurse's tablet too: the nurse's sign-in there ends (and
    # with it that connection; the page reloads).
    nurses.sign_in(clinic.user(5), "555555")
    nurses.connect()
    message = message_make(to_user=clinic.user(5))
    assert sorted(room for room, _ in inbox_rooms(message.uid)) == sorted(
        [vets.room, nurses.room])
    assert len(vets.inbox_pokes()) == 1 and len(nurses.inbox_pokes()) == 1
    for_nurse = message_make(key="n", to_user=clinic.user(3))
    assert inbox_rooms(for_nurse.uid) == [] and nurses.inbox_pokes() == []
