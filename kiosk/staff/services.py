"""Writes for staff users: create, and check a password or a PIN."""

import re

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.audit import audit_record
from ..core.errors import DomainError
from ..core.validate import int_optional, text_optional, text_required
from ..extensions import db
from .models import User

PIN_RE = re.compile(r"^\d{4,6}$")
USERNAME_RE = re.compile(r"^[a-z0-9._-]{2,60}$")
MIN_PASSWORD = 8

ERR_PIN = "A PIN is 4 to 6 digits."
ERR_USERNAME = "A username is 2–60 lower-case letters, digits, dots, dashes or underscores."
ERR_PASSWORD = f"A password has at least {MIN_PASSWORD} characters."
ERR_USERNAME_TAKEN = "That username is taken."
ERR_NO_SIGN_IN = "Give the user a PIN or a username and password, or both."
ERR_BAD_LOGIN = "Wrong username or password."
ERR_BAD_PIN = "Wrong name or PIN."


def _hash(secret: str) -> str:
    """A salted hash of a password or PIN (scrypt; the test profile uses a faster method)."""
    return generate_password_hash(secret, method=current_app.config["KIOSK_PASSWORD_HASH"])


def pin_validate(pin) -> str:
    """The PIN if it is 4–6 digits, else DomainError (checked before any comparison)."""
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise DomainError("bad_pin", ERR_PIN, field="pin")
    return pin


def user_create(*, name, level, pin=None, username=None, password=None, actor=None) -> User:
    """A new staff member with a level 1–6 and a PIN and/or a username and password."""
    name = text_required(name, "name", "Name", 120)
    level = int_optional(level, "level", "Level", 1, 6)
    if level is None:
        raise DomainError("required", "Level is required.", field="level")
    pin = text_optional(pin, "pin", "PIN", 6)
    username = text_optional(username, "username", "Username", 60)
    if pin is None and (username is None or not password):
        raise DomainError("required", ERR_NO_SIGN_IN, field="pin")
    user = User(name=name, level=level)
    if pin is not None:
        user.pin_hash = _hash(pin_validate(pin))
    if username is not None:
        _set_login(user, username, password)
    db.session.add(user)
    db.session.flush()
    audit_record(action="user.create", entity="user", entity_uid=user.uid, user=actor,
                 detail={"name": name, "level": level})
    return user


def _set_login(user: User, username: str, password) -> None:
    username = username.lower()
    if not USERNAME_RE.match(username):
        raise DomainError("bad_username", ERR_USERNAME, field="username")
    taken = db.session.scalar(select(User.id).where(User.username == username,
                                                    User.id != user.id))
    if taken:
        raise DomainError("username_taken", ERR_USERNAME_TAKEN, field="username")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise DomainError("bad_password", ERR_PASSWORD, field="password")
    user.username = username
    user.password_hash = _hash(password)


def user_authenticate_password(*, username, password) -> User:
    """The active user with this username and password, or DomainError."""
    user = db.session.scalar(select(User).where(User.username == (username or "").strip().lower()))
    if (user is None or not user.active or not user.password_hash
            or not check_password_hash(user.password_hash, password or "")):
        raise DomainError("bad_login", ERR_BAD_LOGIN, field="password")
    return user


def user_authenticate_pin(*, user_id, pin) -> User:
    """The active user `user_id` if `pin` is theirs, or DomainError (format checked first)."""
    pin_validate(pin)
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if (user is None or not user.active or not user.pin_hash
            or not check_password_hash(user.pin_hash, pin)):
        raise DomainError("bad_pin", ERR_BAD_PIN, field="pin")
    return user
