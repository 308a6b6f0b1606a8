"""Editing staff: level, active, PIN and password; the last manager always stays."""

import pytest
from werkzeug.security import check_password_hash

from kiosk.core.errors import DomainError, Forbidden
from kiosk.extensions import db
from kiosk.staff.services import (
    ERR_LAST_MANAGER,
    ERR_LAST_MANAGER_SELF,
    ERR_PASSWORD,
    ERR_PIN,
    ERR_USERNAME_TAKEN,
    user_authenticate_password,
    user_authenticate_pin,
    user_create,
    user_set_password,
    user_set_pin,
    user_update,
)

from .helpers import audit_count, fresh


def _state(user) -> tuple:
    user = fresh(user)
    return (user.name, user.level, user.active, user.username, user.pin_hash,
            user.password_hash)


def test_user_update_changes_name_level_and_active(clinic):
    user = clinic.user(2)
    user_update(user=user, actor=clinic.user(6), name="Leo", level="3", active=False)
    db.session.commit()
    user = fresh(user)
    assert (user.name, user.level, user.active) == ("Leo", 3, False)


def test_last_manager_cannot_demote_self(clinic):
    me = clinic.user(6)
    before, audits = _state(me), audit_count()
    with pytest.raises(DomainError) as exc:
        user_update(user=me, actor=me, name=me.name, level=5, active=True)
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == ("last_manager", "level")
    assert exc.value.message == ERR_LAST_MANAGER_SELF
    assert _state(me) == before
    assert audit_count() == audits


def test_last_manager_cannot_deactivate_self(clinic):
    me = clinic.user(6)
    before = _state(me)
    with pytest.raises(DomainError) as exc:
        user_update(user=me, actor=me, name=me.name, level=6, active=False)
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == ("last_manager", "active")
    assert _state(me) == before


def test_the_last_manager_is_named_when_someone_else_acts(clinic):
    me = clinic.user(6)
    former = user_create(name="Former boss", level=6, pin="999999")
    former.active = False
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        user_update(user=me, actor=former, name=me.name, level=4, active=True)
    db.session.rollback()
    assert exc.value.message == ERR_LAST_MANAGER.format(name="Level 6")
    assert fresh(me).level == 6


def test_a_manager_may_step_down_when_another_remains(clinic):
    me = clinic.user(6)
    user_create(name="Second boss", level=6, pin="999999")
    db.session.commit()
    user_update(user=me, actor=me, name=me.name, level=5, active=True)
    db.session.commit()
    assert fresh(me).level == 5


def test_an_inactive_manager_does_not_count(clinic):
    me = clinic.user(6)
    other = user_create(name="Gone boss", level=6, pin="999999")
    other.active = False
    db.session.commit()
    with pytest.raises(DomainError):
        user_update(user=me, actor=me, name=me.name, level=5, active=True)
    db.session.rollback()
    assert fresh(me).level == 6


@pytest.mark.parametrize(("data", "code", "field"), [
    ({"name": "", "level": 2}, "required", "name"),
    ({"name": "Leo", "level": 7}, "out_of_range", "level"),
    ({"name": "Leo", "level": ""}, "required", "level"),
    ({"name": "Leo", "level": "two"}, "not_a_number", "level"),
])
def test_user_update_refuses_bad_input(clinic, data, code, field):
    user = clinic.user(2)
    before = _state(user)
    with pytest.raises(DomainError) as exc:
        user_update(user=user, actor=clinic.user(6), active=True, **data)
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == (code, field)
    assert _state(user) == before


def test_user_update_needs_a_manager(clinic):
    user = clinic.user(2)
    before = _state(user)
    with pytest.raises(Forbidden):
        user_update(user=user, actor=clinic.user(5), name="X", level=6, active=True)
    db.session.rollback()
    assert _state(user) == before


def test_pin_reset(clinic):
    user = clinic.user(2)
    user_set_pin(user=user, actor=clinic.user(6), pin="4321")
    db.session.commit()
    assert user_authenticate_pin(user_id=user.id, pin="4321").id == user.id


@pytest.mark.parametrize("pin", ["12", "1234567", "12ab", ""])
def test_bad_pin_is_refused(clinic, pin):
    user = clinic.user(2)
    before = _state(user)
    with pytest.raises(DomainError) as exc:
        user_set_pin(user=user, actor=clinic.user(6), pin=pin)
    db.session.rollback()
    assert (exc.value.message, exc.value.field) == (ERR_PIN, "pin")
    assert _state(user) == before


def test_set_password_for_a_pin_only_user(clinic):
    user = user_create(name="Pin only", level=2, pin="2468")
    db.session.commit()
    user_set_password(user=user, actor=clinic.user(6), username="PinOnly",
                      password="long-enough")
    db.session.commit()
    assert user_authenticate_password(username="pinonly", password="long-enough").id == user.id
    assert check_password_hash(fresh(user).password_hash, "long-enough")


@pytest.mark.parametrize(("username", "password", "message", "field"), [
    ("user1", "long-enough", ERR_USERNAME_TAKEN, "username"),
    ("user2", "short", ERR_PASSWORD, "password"),
    ("", "long-enough", None, "username"),
])
def test_set_password_refuses_bad_input(clinic, username, password, message, field):
    user = clinic.user(2)
    before = _state(user)
    with pytest.raises(DomainError) as exc:
        user_set_password(user=user, actor=clinic.user(6), username=username, password=password)
    db.session.rollback()
    assert exc.value.field == field
    if message:
        assert exc.value.message == message
    assert _state(user) == before
