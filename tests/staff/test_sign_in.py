"""Sign-in with a password or a PIN, sign-out, and the safety of `next`."""

import pytest

from kiosk.core.errors import DomainError
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.staff.models import User
from kiosk.staff.services import user_authenticate_pin, user_create


def test_password_sign_in_and_out(clinic, client):
    response = client.post("/login", data={"username": "user4", "password": "password-4",
                                           "next": "/boards/"})
    assert response.status_code == 302 and response.headers["Location"] == "/boards/"
    assert client.get("/patients/").status_code == 200
    client.post("/logout")
    assert client.get("/patients/").status_code == 302


def test_wrong_password_is_refused(clinic, client):
    response = client.post("/login", data={"username": "user4", "password": "nope"})
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert client.get("/patients/").status_code == 302


def as_tablet(client) -> None:
    """Make the test client a paired tablet (a PIN signs in nowhere else)."""
    _device, token = device_provision(name="Ward", colour="blue", number=1)
    db.session.commit()
    assert client.post("/tablet/claim", headers={"Authorization": f"Bearer {token}"}
                       ).status_code == 200


def test_pin_sign_in(clinic, client):
    user = clinic.user(3)
    as_tablet(client)
    bad = client.post("/login/pin", data={"user_id": str(user.id), "pin": "9999"})
    assert bad.status_code == 401 and "Wrong name or PIN." in bad.get_data(as_text=True)
    good = client.post("/login/pin", data={"user_id": str(user.id), "pin": "3333"})
    assert good.status_code == 302
    assert "Level 3" in client.get("/patients/").get_data(as_text=True)


def test_pin_of_the_wrong_length_is_refused_before_any_check(clinic):
    with pytest.raises(DomainError) as err:
        user_authenticate_pin(user_id=clinic.user(3).id, pin="12")
    assert err.value.code == "bad_pin" and "4 to 6 digits" in err.value.message


def test_next_cannot_leave_the_site(clinic, client):
    response = client.post("/login", data={"username": "user1", "password": "password-1",
                                           "next": "//evil.example/x"})
    assert response.headers["Location"] == "/patients/"


def test_inactive_users_cannot_sign_in_and_lose_their_session(clinic, client, login):
    user = clinic.user(2)
    login(user)
    assert client.get("/patients/").status_code == 200
    user.active = False
    db.session.commit()
    assert client.get("/patients/").status_code == 302
    as_tablet(client)
    assert client.post("/login/pin", data={"user_id": str(user.id), "pin": "2222"}
                       ).status_code == 401


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "", "level": 1, "pin": "1234"}, "name"),
    ({"name": "A", "level": 7, "pin": "1234"}, "level"),
    ({"name": "A", "level": 1, "pin": "12a4"}, "pin"),
    ({"name": "A", "level": 1}, "pin"),
    ({"name": "A", "level": 1, "username": "user1", "password": "long-enough"}, "username"),
    ({"name": "A", "level": 1, "username": "new", "password": "short"}, "password"),
])
def test_bad_users_are_refused(clinic, kwargs, field):
    before = db.session.query(User).count()
    with pytest.raises(DomainError) as err:
        user_create(**kwargs)
    db.session.rollback()
    assert err.value.field == field
    assert db.session.query(User).count() == before


def test_secrets_are_stored_hashed(clinic):
    user = clinic.user(5)
    assert "555555" not in user.pin_hash and "password-5" not in user.password_hash
