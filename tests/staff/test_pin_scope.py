"""A PIN is for shared tablets: the PIN sign-in works only on a paired tablet, the sign-in
page lists the PIN users only there, and a PIN session never opens the manager's pages
(admin, staff, devices, settings), which need a password."""

import pytest
from sqlalchemy import func, select

from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.staff.models import PinFailure, User


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def tablet(clinic, client):
    """This test client is a paired tablet (its tablet session, claimed by its token)."""
    device, token = device_provision(name="Ward", colour="blue", number=1)
    db.session.commit()
    assert client.post("/tablet/claim", headers={"Authorization": f"Bearer {token}"}
                       ).status_code == 200
    return device


def test_a_pin_sign_in_off_a_paired_tablet_is_refused_and_changes_nothing(clinic, client):
    manager = clinic.user(6)
    before = (count(User), count(PinFailure))
    response = client.post("/login/pin", data={"user_id": str(manager.id), "pin": "666666"})
    assert response.status_code == 403
    assert "only on a paired tablet" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "user_id" not in session and "auth" not in session
    assert client.get("/admin/").status_code == 302  # still nobody signed in
    assert (count(User), count(PinFailure)) == before


def test_a_wrong_pin_off_a_tablet_is_not_counted(clinic, client):
    user = clinic.user(2)
    for _ in range(6):
        assert client.post("/login/pin", data={"user_id": str(user.id), "pin": "1234"}
                           ).status_code == 403
    assert count(PinFailure) == 0


def test_a_pin_session_on_a_tablet_never_opens_the_manager_pages(clinic, client, tablet):
    manager = clinic.user(6)
    signed = client.post("/login/pin", data={"user_id": str(manager.id), "pin": "666666"})
    assert signed.status_code == 302
    assert client.get("/patients/").status_code == 200
    users = count(User)
    for url in ("/admin/", "/admin/staff", "/admin/staff/new", "/admin/settings", "/devices/",
                f"/admin/staff/{manager.id}"):
        page = client.get(url)
        assert page.status_code == 403, url
        assert "password" in page.get_data(as_text=True)
    created = client.post("/admin/staff/new", data={"name": "Mallory", "level": "6",
                                                    "pin": "4321"})
    assert created.status_code == 403 and count(User) == users
    added = client.post("/devices/", data={"name": "X", "colour": "blue", "kind": "tablet"})
    assert added.status_code == 403


def test_a_password_session_still_opens_the_manager_pages(clinic, client, tablet):
    client.post("/login", data={"username": "user6", "password": "password-6"})
    assert client.get("/admin/").status_code == 200
    assert client.get("/devices/").status_code == 200


def test_the_sign_in_page_lists_pin_users_only_on_a_paired_tablet(clinic, client):
    page = client.get("/login").get_data(as_text=True)
    assert "Level 3" not in page and f'value="{clinic.user(3).id}"' not in page
    assert 'action="/login"' in page  # the password form is there
    refused = client.post("/login", data={"username": "user3", "password": "nope"})
    assert refused.status_code == 401 and "Level 3" not in refused.get_data(as_text=True)
    device, token = device_provision(name="Ward", colour="blue", number=1)
    db.session.commit()
    client.post("/tablet/claim", headers={"Authorization": f"Bearer {token}"})
    page = client.get("/login").get_data(as_text=True)
    assert "Level 3" in page and f'value="{clinic.user(3).id}"' in page
