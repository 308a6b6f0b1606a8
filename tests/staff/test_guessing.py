"""Guessing passwords and PINs: a per-user lockout with a growing delay that holds from
any address, a per-tablet count, the audit trail, a manager's unlock, and the per-address
rate limit (in memory, and on Redis when one is reachable)."""

import os
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kiosk.cli import main
from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.devices.services import device_add, device_pair
from kiosk.extensions import db
from kiosk.staff.models import PinFailure, User
from kiosk.staff.services import (
    ERR_BAD_LOGIN,
    user_authenticate_password,
    user_authenticate_pin,
)
from tests.support.tablet import paired_tablet_client

REDIS_URL = os.environ.get("KIOSK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def at(address: str) -> dict:
    return {"REMOTE_ADDR": address}


def audit_actions(user) -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_uid == user.uid).order_by(AuditEntry.id)))


# ---- One lock per user, whatever the address ----------------------------------------------

def test_80_wrong_pins_over_20_addresses_lock_the_user(frozen_clock, app, clinic):
    """Spread over 20 tablets at 20 addresses (four each, under any one tablet's hold),
    80 wrong PINs still lock the person, and the right PIN on a 21st tablet is refused."""
    user = clinic.user(3)
    tablets = [paired_tablet_client(app, n + 1) for n in range(21)]
    for n in range(80):
        response = tablets[n % 20].post("/login/pin", data={"user_id": user.id, "pin": "9999"},
                                        environ_base=at(f"127.0.0.{n % 20 + 1}"))
        assert response.status_code == 401
    client = tablets[20]
    right = client.post("/login/pin", data={"user_id": user.id, "pin": "3333"},
                        environ_base=at("127.0.0.99"))
    assert right.status_code == 401
    assert "Level 3 is locked out until" in right.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "user_id" not in session
    db.session.expire_all()
    # Refusals while locked are not even checked: the count stopped at the lock.
    assert user.sign_in_failures == 5
    assert user.locked_until == frozen_clock.now + timedelta(minutes=1)
    assert audit_actions(user) == ["user.create", "user.lockout"]


def test_40_wrong_passwords_then_the_right_one_is_refused(frozen_clock, client, clinic):
    for n in range(40):
        response = client.post("/login", data={"username": "user4", "password": "wrong-one"},
                               environ_base=at(f"10.0.0.{n % 20 + 1}"))
        assert response.status_code == 401
    right = client.post("/login", data={"username": "user4", "password": "password-4"},
                        environ_base=at("10.0.1.1"))
    assert right.status_code == 401
    assert ERR_BAD_LOGIN in right.get_data(as_text=True)
    assert client.get("/patients/").status_code == 302  # not signed in
    # Once the delay has passed, the right password works and the count starts over.
    frozen_clock.advance(seconds=61)
    assert client.post("/login", data={"username": "user4", "password": "password-4"},
                       environ_base=at("10.0.1.1")).status_code == 302
    db.session.expire_all()
    assert clinic.user(4).sign_in_failures == 0 and clinic.user(4).locked_until is None


def test_the_delay_grows_with_each_wrong_try_and_is_capped(frozen_clock, clinic):
    user = clinic.user(4)
    waits = []
    for _ in range(12):
        with pytest.raises(DomainError):
            user_authenticate_password(username="user4", password="wrong-one")
        db.session.commit()
        if user.locked_until is not None:
            wait = user.locked_until - frozen_clock.now
            waits.append(int(wait.total_seconds() // 60))
            frozen_clock.advance(seconds=int(wait.total_seconds()))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    # A wrong try is held back while locked, even the right password.
    with pytest.raises(DomainError):
        user_authenticate_password(username="user4", password="wrong-one")
    db.session.commit()
    frozen_clock.advance(seconds=-1)
    with pytest.raises(DomainError) as locked:
        user_authenticate_password(username="user4", password="password-4")
    assert locked.value.message == ERR_BAD_LOGIN
    db.session.rollback()


def test_wrong_pins_and_passwords_share_one_count(frozen_clock, clinic):
    user = clinic.user(3)
    for _ in range(3):
        with pytest.raises(DomainError):
            user_authenticate_password(username="user3", password="wrong-one")
    for _ in range(2):
        with pytest.raises(DomainError):
            user_authenticate_pin(user_id=user.id, pin="9999")
    with pytest.raises(DomainError) as locked:
        user_authenticate_pin(user_id=user.id, pin="3333")
    assert locked.value.code == "pin_locked"


def test_a_locked_account_says_no_more_than_an_unknown_username(frozen_clock, client, clinic):
    for _ in range(5):
        client.post("/login", data={"username": "user4", "password": "wrong-one"})
    locked = client.post("/login", data={"username": "user4", "password": "password-4"})
    unknown = client.post("/login", data={"username": "nobody", "password": "password-4"})
    wrong = client.post("/login", data={"username": "user5", "password": "wrong-one"})
    assert locked.status_code == unknown.status_code == wrong.status_code == 401
    assert locked.get_data() == unknown.get_data() == wrong.get_data()


def test_a_wrong_shape_never_counts(frozen_clock, clinic):
    user = clinic.user(3)
    for pin in ("333", "3333333", "33a3", "") * 3:
        with pytest.raises(DomainError) as refused:
            user_authenticate_pin(user_id=user.id, pin=pin)
        assert refused.value.code == "bad_pin"
    db.session.expire_all()
    assert user.sign_in_failures == 0 and user.locked_until is None


# ---- Per tablet ---------------------------------------------------------------------------

@pytest.fixture
def tablet(clinic):
    device, code = device_add(actor=clinic.user(6), name="Ward 1", colour="blue", number=2)
    device, _token = device_pair(code=code)
    db.session.commit()
    return device


def test_ten_wrong_pins_on_one_tablet_hold_pin_sign_in_there(frozen_clock, clinic, tablet):
    # Two guesses each for five people: nobody reaches their own lock, the tablet does.
    for level in (1, 2, 3, 4, 5):
        for _ in range(2):
            with pytest.raises(DomainError) as wrong:
                user_authenticate_pin(user_id=clinic.user(level).id, pin="987654",
                                      device=tablet)
            assert wrong.value.code == "bad_pin"
            db.session.commit()
    with pytest.raises(DomainError) as held:
        user_authenticate_pin(user_id=clinic.user(6).id, pin="666666", device=tablet)
    assert held.value.code == "place_locked" and "on this tablet" in held.value.message
    db.session.rollback()
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "device.pin_lockout", AuditEntry.device_id == tablet.id)) == 1
    # Elsewhere (no tablet) the same person still signs in; later, here too.
    assert user_authenticate_pin(user_id=clinic.user(6).id, pin="666666") == clinic.user(6)
    frozen_clock.advance(seconds=61)
    assert user_authenticate_pin(user_id=clinic.user(6).id, pin="666666",
                                 device=tablet) == clinic.user(6)
    db.session.commit()
    assert db.session.scalar(select(func.count(PinFailure.id))) == 0  # cleared by a success


# ---- A manager unlocks ----------------------------------------------------------------------

def _lock(user, username: str):
    for _ in range(5):
        with pytest.raises(DomainError):
            user_authenticate_password(username=username, password="wrong-one")
    db.session.commit()
    assert user.locked_until is not None


def test_a_manager_unlocks_from_the_staff_page_and_it_is_audited(frozen_clock, client, clinic,
                                                                 login):
    user = clinic.user(4)
    _lock(user, "user4")
    login(clinic.user(6))
    page = client.get("/admin/staff").get_data(as_text=True)
    assert "Locked until" in page and f"/admin/staff/{user.id}/unlock" in page
    response = client.post(f"/admin/staff/{user.id}/unlock")
    assert response.status_code == 302
    db.session.expire_all()
    assert user.locked_until is None and user.sign_in_failures == 0
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.unlock"))
    assert entry.user_id == clinic.user(6).id and entry.entity_uid == user.uid
    assert entry.detail["failures"] == 5
    client.post("/logout")
    assert client.post("/login", data={"username": "user4", "password": "password-4"}
                       ).status_code == 302


def test_only_a_manager_may_unlock(frozen_clock, client, clinic, login):
    user = clinic.user(4)
    _lock(user, "user4")
    login(clinic.user(5))
    assert client.post(f"/admin/staff/{user.id}/unlock").status_code == 403
    db.session.expire_all()
    assert user.locked_until is not None and user.sign_in_failures == 5
    assert "user.unlock" not in audit_actions(user)


def test_the_unlock_form_needs_its_csrf_token(frozen_clock, app, client, clinic, login):
    user = clinic.user(4)
    _lock(user, "user4")
    app.config["WTF_CSRF_ENABLED"] = True
    login(clinic.user(6))
    response = client.post(f"/admin/staff/{user.id}/unlock")
    assert response.status_code == 400 and "This form has expired" in response.get_data(
        as_text=True)
    db.session.expire_all()
    assert user.locked_until is not None


def test_the_command_line_unlocks(frozen_clock, runner, clinic):
    user = clinic.user(3)
    _lock(user, "user3")
    result = runner.invoke(main, ["users", "unlock", user.public_id])
    assert result.exit_code == 0, result.output
    assert "Level 3 can sign in again" in result.output
    db.session.expire_all()
    assert user.locked_until is None and "user.unlock" in audit_actions(user)
    missing = runner.invoke(main, ["users", "unlock", "u_999"])
    assert missing.exit_code != 0 and "There is no user u_999" in missing.output


# ---- Per address (Flask-Limiter) ------------------------------------------------------------

@pytest.fixture(params=["memory", "redis"])
def limited_app(request, server_database, tmp_path):
    """An application whose per-address limit is 3 a minute, in memory or in Redis."""
    from tests import factories
    from tests.support.database import app_on_fresh_database

    overrides = {"KIOSK_SIGN_IN_LIMIT": "3 per minute"}
    if request.param == "redis":
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except Exception as exc:  # noqa: BLE001 (any failure means: no Redis here)
            if os.environ.get("CI"):
                pytest.fail(f"Redis at {REDIS_URL} is unreachable on CI: {exc}")
            pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
        # KIOSK_REDIS_URL as a deployment sets it; a channel (and key prefix) of its own.
        overrides.update(KIOSK_REDIS_URL=REDIS_URL,
                         KIOSK_REDIS_CHANNEL=f"kiosk-guessing-test-{uuid.uuid4().hex}")
    with app_on_fresh_database(server_database, tmp_path / "limits.db",
                               overrides) as application:
        factories.clinic_make()
        yield application


def test_sign_in_posts_are_limited_per_address(limited_app):
    client = limited_app.test_client()
    for _ in range(3):
        assert client.post("/login", data={"username": "user1", "password": "wrong-one"},
                           environ_base=at("10.9.0.1")).status_code == 401
    refused = client.post("/login", data={"username": "user1", "password": "password-1"},
                          environ_base=at("10.9.0.1"))
    assert refused.status_code == 429 and "Too many attempts" in refused.get_data(
        as_text=True)
    # The PIN form counts too; another address is not held up.
    assert client.post("/login/pin", data={"user_id": "1", "pin": "1111"},
                       environ_base=at("10.9.0.1")).status_code == 429
    assert client.post("/login", data={"username": "user1", "password": "password-1"},
                       environ_base=at("10.9.0.2")).status_code == 302
    # Nothing was signed in or counted by the refused posts.
    user = db.session.scalar(select(User).where(User.username == "user1"))
    assert user.sign_in_failures == 0  # the right password at .2 cleared the three


def test_pairing_posts_are_limited_per_address_with_a_json_answer(limited_app):
    client = limited_app.test_client()
    for _ in range(3):
        assert client.post("/pair", json={"code": "AAAA-AAAA"}, headers={
            "Accept": "application/json"}, environ_base=at("10.9.0.3")).status_code == 400
    refused = client.post("/pair", json={"code": "AAAA-AAAA"},
                          headers={"Accept": "application/json"}, environ_base=at("10.9.0.3"))
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "rate_limited"


def test_a_redis_that_is_gone_never_turns_sign_in_into_a_500(server_database, tmp_path):
    from kiosk import create_app
    from tests import factories

    application = create_app("testing", {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'gone.db'}",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0", "KIOSK_SIGN_IN_LIMIT": "2 per minute"})
    with application.app_context():
        db.create_all()
        factories.clinic_make()
        client = application.test_client()
        assert client.post("/login", data={"username": "user1", "password": "wrong-one"}
                           ).status_code == 401
        assert client.post("/login", data={"username": "user1", "password": "password-1"}
                           ).status_code == 302
        db.session.remove()
        db.engine.dispose()
