"""Portal links: a token carries its message's uid only, signed; a tampered, garbled or
foreign one, or one naming no message, is refused; one older than the clinic's
portal_link_days has expired, by the clinic's clock (held here), not the wall clock."""

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from kiosk.core import clock
from kiosk.core.errors import DomainError
from kiosk.core.models import new_uid
from kiosk.extensions import db
from kiosk.messaging.links import (
    ERR_LINK_EXPIRED,
    ERR_LINK_INVALID,
    ERR_NO_PUBLIC_URL,
    SALT,
    link_days,
    portal_link,
    portal_message,
    portal_token,
)
from kiosk.messaging.models import ClientMessage

INVALID = ERR_LINK_INVALID.format(clinic="Test Hospital")
EXPIRED = ERR_LINK_EXPIRED.format(clinic="Test Hospital")


def refused(token: str, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        portal_message(token, **kwargs)
    return caught.value


def test_a_token_opens_its_own_message_and_carries_its_uid_only(app, asked):
    message, token = asked
    assert portal_message(token) is message
    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT).loads(token)
    assert payload == message.uid


def _other_signature(token: str) -> str:
    """The token with its signature's first character changed. Not the last: a 20-byte
    signature is 27 base64 characters, the last holding two spare bits, so 'A' and 'B'
    there decode to the same bytes and the token is still good."""
    body, signature = token.rsplit(".", 1)
    return f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


@pytest.mark.parametrize("spoil", [
    _other_signature,                                   # the signature changed
    lambda t: ("x" if t[0] != "x" else "y") + t[1:],   # the payload changed
    lambda t: t[: len(t) // 2],                        # cut short (a wrapped SMS)
    lambda t: "not-a-token",
    lambda t: "",
    lambda t: "a.b.c",
])
def test_a_tampered_or_garbled_token_is_invalid(asked, spoil):
    _, token = asked
    error = refused(spoil(token))
    assert (error.code, error.status, error.message) == ("link_invalid", 404, INVALID)


def test_a_token_signed_for_something_else_or_with_another_key_is_invalid(app, asked):
    message, _ = asked
    other_salt = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="something else")
    other_key = URLSafeTimedSerializer("another clinic's key", salt=SALT)
    for token in (other_salt.dumps(message.uid), other_key.dumps(message.uid)):
        assert refused(token).code == "link_invalid"


def test_a_token_naming_no_message_is_invalid(app, asked):
    ghost = ClientMessage(uid=new_uid())  # never stored
    error = refused(portal_token(ghost))
    assert (error.code, error.message) == ("link_invalid", INVALID)
    payload_not_a_uid = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT).dumps(
        {"uid": ghost.uid})
    assert refused(payload_not_a_uid).code == "link_invalid"


def test_a_link_expires_after_the_clinics_days_on_the_held_clock(clinic, asked, held):
    message, token = asked
    assert link_days() == 14
    held.advance(days=14)
    assert portal_message(token) is message
    held.advance(seconds=1)
    error = refused(token)
    assert (error.code, error.status, error.message) == ("link_expired", 410, EXPIRED)
    clinic.settings.portal_link_days = 30  # the clinic allows longer: the link works again
    db.session.commit()
    assert portal_message(token) is message


def test_the_clinics_clock_decides_not_the_wall_clock(rex, intake, send, held):
    held.set(datetime(2019, 3, 1, 9, 0, tzinfo=UTC))  # years before the wall clock's now
    message = send(rex, key="old", form_template=intake)
    token = portal_token(message)
    held.advance(days=13)
    assert portal_message(token) is message  # itsdangerous's own clock would say expired
    assert refused(token, now=clock.utcnow() + timedelta(days=2)).code == "link_expired"


def test_a_link_is_absolute_under_the_public_address(app, asked):
    message, _ = asked
    app.config["KIOSK_PUBLIC_URL"] = "https://vets.example.org/"
    link = portal_link(message)  # outside any request, as a sending job calls it
    assert link.startswith("https://vets.example.org/portal/")
    assert portal_message(link.rsplit("/", 1)[1]) is message


def test_without_a_public_address_the_request_gives_it(app, asked):
    message, _ = asked
    app.config["KIOSK_PUBLIC_URL"] = None
    with app.test_request_context("/", base_url="https://ward.example.org"):
        link = portal_link(message)
    assert link.startswith("https://ward.example.org/portal/")
    with pytest.raises(DomainError) as caught:  # a job with no address to give
        portal_link(message)
    assert (caught.value.code, caught.value.message) == ("no_public_url", ERR_NO_PUBLIC_URL)
