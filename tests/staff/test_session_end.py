"""Sessions can be ended: a cookie copied before a sign-out, a password or PIN reset, a
re-pairing or a revoke-then-re-pair stops working at once.

People's sessions are kept on the server (one row per sign-in, named by a random key in
the cookie): signing out ends that sign-in only (a nurse locking a shared tablet does not
sign out her desktop), a new password or PIN ends every sign-in of that person. A device's
sessions carry its generation, which re-pairing and revoking move on.
"""


import pytest
from sqlalchemy import func, select

from kiosk.devices.models import Device
from kiosk.devices.services import (
    device_add,
    device_pair,
    device_pairing_start,
    device_revoke,
    display_create,
)
from kiosk.extensions import db
from kiosk.live.sockets import disconnect_revoked
from kiosk.staff.models import StaffSession


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def copy_of(app, client):
    """Another browser holding a copy of `client`'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def password_sign_in(client, level: int):
    response = client.post("/login", data={"username": f"user{level}",
                                           "password": f"password-{level}"})
    assert response.status_code == 302
    return response


def signed_in(client) -> bool:
    return client.get("/patients/").status_code == 200


@pytest.fixture
def tablet(clinic):
    """A tablet a manager added and paired: (device, token)."""
    device, code = device_add(actor=clinic.user(6), name="Ward", colour="blue", number=1)
    device, token = device_pair(code=code)
    db.session.commit()
    return device, token


def test_a_cookie_copied_before_sign_out_stops_working(app, clinic, client):
    password_sign_in(client, 4)
    copied = copy_of(app, client)
    desk = app.test_client()
    password_sign_in(desk, 4)  # the same person on another computer
    assert signed_in(copied)
    client.post("/logout")
    assert not signed_in(client) and not signed_in(copied)
    assert copied.get("/patients/").headers["Location"].startswith("/login")
    assert signed_in(desk)  # signing out here leaves the other computer signed in


def test_a_password_reset_ends_that_persons_sessions_but_not_the_managers(app, clinic, client):
    password_sign_in(client, 4)
    manager = app.test_client()
    password_sign_in(manager, 6)
    done = manager.post(f"/admin/staff/{clinic.user(4).id}/password",
                        data={"username": "user4", "password": "a-new-password"})
    assert done.status_code == 302
    assert not signed_in(client)
    assert signed_in(manager)
    password_sign_in_again = client.post("/login", data={"username": "user4",
                                                         "password": "a-new-password"})
    assert password_sign_in_again.status_code == 302 and signed_in(client)


def test_a_refused_password_reset_ends_nothing(app, clinic, client):
    password_sign_in(client, 4)
    manager = app.test_client()
    password_sign_in(manager, 6)
    refused = manager.post(f"/admin/staff/{clinic.user(4).id}/password",
                           data={"username": "user4", "password": "short"})
    assert refused.status_code == 422
    assert signed_in(client)


def test_a_manager_changing_their_own_password_stays_signed_in_here_only(app, clinic,
                                                                         client):
    password_sign_in(client, 6)
    elsewhere = app.test_client()
    password_sign_in(elsewhere, 6)
    client.post(f"/admin/staff/{clinic.user(6).id}/password",
                data={"username": "user6", "password": "a-new-password"})
    assert signed_in(client) and not signed_in(elsewhere)


def test_a_pin_reset_ends_that_persons_sessions(app, clinic, client, tablet):
    client.post("/tablet/claim", headers=bearer(tablet[1]))
    assert client.post("/login/pin", data={"user_id": clinic.user(3).id, "pin": "3333"}
                       ).status_code == 302
    with client.session_transaction() as session:
        assert session["user_id"] == clinic.user(3).id
    manager = app.test_client()
    password_sign_in(manager, 6)
    assert manager.post(f"/admin/staff/{clinic.user(3).id}/pin", data={"pin": "9876"}
                        ).status_code == 302
    page = client.get("/patients/")  # the tablet still reads, as a tablet, with no one
    assert page.status_code == 200 and "Level 3" not in page.get_data(as_text=True)


def test_re_pairing_a_tablet_ends_its_earlier_sessions(app, clinic, client, tablet):
    device, token = tablet
    client.post("/tablet/claim", headers=bearer(token))
    client.post("/login/pin", data={"user_id": clinic.user(3).id, "pin": "3333"})
    copied = copy_of(app, client)
    assert signed_in(copied)
    code = device_pairing_start(actor=clinic.user(6), device=device)
    db.session.commit()
    fresh = app.test_client()
    assert fresh.post("/pair", json={"code": code}).status_code == 200
    assert signed_in(fresh)  # the newly paired browser is the tablet now
    for old in (client, copied):
        assert not signed_in(old)  # neither the tablet session nor the PIN session lives on
        with old.session_transaction() as session:
            assert session.get("tablet_id") == device.id  # the cookie itself is unchanged


def test_revoke_then_re_pair_ends_the_earlier_sessions(app, clinic, client, tablet):
    device, token = tablet
    client.post("/tablet/claim", headers=bearer(token))
    copied = copy_of(app, client)
    device_revoke(actor=clinic.user(6), device=device)
    db.session.commit()
    assert not signed_in(copied)
    code = device_pairing_start(actor=clinic.user(6), device=db.session.get(Device, device.id))
    db.session.commit()
    assert app.test_client().post("/pair", json={"code": code}).status_code == 200
    assert not signed_in(copied) and not signed_in(client)


def test_re_pairing_a_display_ends_its_earlier_display_session(app, clinic, client):
    device, token = display_create(actor=clinic.user(6), name="Corridor",
                                   board_id=clinic.board.id)
    db.session.commit()
    assert client.post("/display/claim", json={"token": token}).status_code == 200
    board = f"/boards/{clinic.board.id}"
    assert client.get(board).status_code == 200
    code = device_pairing_start(actor=clinic.user(6), device=device)
    db.session.commit()
    assert app.test_client().post("/pair", json={"code": code}).status_code == 200
    assert client.get(board).status_code != 200


def test_a_lock_and_unlock_cycle_on_a_tablet_keeps_it_a_tablet(app, clinic, client, tablet):
    device, token = tablet
    client.post("/tablet/claim", headers=bearer(token))
    for _ in range(2):
        assert client.post("/login/pin", data={"user_id": clinic.user(3).id, "pin": "3333"}
                           ).status_code == 302
        assert "Level 3" in client.get("/patients/").get_data(as_text=True)
        client.post("/logout")  # what the lock screen does
        page = client.get("/patients/")
        assert page.status_code == 200 and f'data-tablet="{device.public_id}"' in page.text
    # The cookie lost: the tablet claims its session back by its token.
    client.delete_cookie("session")
    assert client.post("/tablet/claim", headers=bearer(token)).status_code == 200
    assert signed_in(client)


def test_a_sign_in_lasts_thirty_days_at_most(frozen_clock, app, clinic, client):
    password_sign_in(client, 4)
    frozen_clock.advance(days=29)
    assert signed_in(client)
    frozen_clock.advance(days=2)
    assert not signed_in(client)


def test_signing_in_again_prunes_ended_sign_ins(app, clinic, client):
    for _ in range(3):
        password_sign_in(client, 4)
        client.post("/logout")
    password_sign_in(client, 4)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(StaffSession)) == 1


def test_signing_out_closes_that_sessions_live_connections(app, clinic, client,
                                                           socketio_client):
    password_sign_in(client, 2)
    sio = socketio_client()
    assert sio.is_connected()
    other = app.test_client()
    password_sign_in(other, 2)
    from kiosk.extensions import socketio

    stays = socketio.test_client(app, flask_test_client=other)
    assert stays.is_connected()
    client.post("/logout")
    disconnect_revoked(app)
    assert not sio.is_connected() and stays.is_connected()
    stays.disconnect()


def test_re_pairing_a_tablet_closes_the_connections_of_its_old_token(app, clinic, client,
                                                                     tablet, socketio_client):
    device, token = tablet
    sio = socketio_client(auth={"token": token})
    assert sio.is_connected()
    code = device_pairing_start(actor=clinic.user(6), device=device)
    db.session.commit()
    fresh = app.test_client()
    answer = fresh.post("/pair", json={"code": code}).get_json()
    assert not sio.is_connected()  # closed at once, in this process
    from kiosk.extensions import socketio

    again = socketio.test_client(app, auth={"token": answer["token"]})
    assert again.is_connected()
    assert disconnect_revoked(app) == 0 and again.is_connected()
    again.disconnect()


def test_a_deactivated_persons_cookie_stays_dead_when_they_come_back(app, clinic, client):
    password_sign_in(client, 4)
    copied = copy_of(app, client)
    manager = app.test_client()
    password_sign_in(manager, 6)
    user = clinic.user(4)
    form = {"name": user.name, "level": "4"}
    assert manager.post(f"/admin/staff/{user.id}", data=form).status_code == 302
    assert not signed_in(copied)
    assert manager.post(f"/admin/staff/{user.id}", data={**form, "active": "on"}
                        ).status_code == 302
    assert not signed_in(copied) and not signed_in(client)


def test_the_services_end_sign_ins_whoever_calls_them(app, clinic):
    """A new PIN or password, or deactivation, ends sign-ins in the service itself, so the
    command line or any later caller ends them as the admin pages do; `keep_sign_in` spares
    the one sign-in that made the change."""
    from kiosk.staff.services import user_set_password, user_set_pin, user_update
    from kiosk.staff.sessions import staff_session_live, staff_session_start

    user, manager = clinic.user(3), clinic.user(6)
    first = staff_session_start(user=user, auth="password")
    second = staff_session_start(user=user, auth="password")
    db.session.commit()
    user_set_pin(user=user, actor=manager, pin="3434", keep_sign_in=second)
    db.session.commit()
    assert staff_session_live(first, user.id) is None
    assert staff_session_live(second, user.id) is not None
    user_set_password(user=user, actor=manager, username="user3", password="another-one")
    db.session.commit()
    assert staff_session_live(second, user.id) is None
    third = staff_session_start(user=user, auth="password")
    user_update(user=user, actor=manager, name=user.name, level=user.level, active=False)
    db.session.commit()
    assert staff_session_live(third, user.id) is None
