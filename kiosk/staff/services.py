"""Writes for staff users: create, and check a password or a PIN."""

import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.clock import to_local, utcnow
from ..core.errors import DomainError
from ..core.validate import int_optional, text_optional, text_required
from ..extensions import db
from .models import PinFailure, User

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
ERR_PIN_LOCKED = ("Too many wrong PINs: {name} is locked out here until {until}. "
                  "Someone else can sign in meanwhile.")

# Wrong PINs in a row before a user is locked out at one place, and for how long. The
# same numbers apply on a tablet's own lock screen (static/js/lock.js), offline too.
PIN_TRIES = 5
PIN_LOCKOUT = timedelta(minutes=10)


def _hash(secret: str) -> str:
    """A salted hash of a password or PIN (scrypt; the test profile uses a faster method)."""
    return generate_password_hash(secret, method=current_app.config["KIOSK_PASSWORD_HASH"])


def pin_validate(pin) -> str:
    """The PIN if it is 4–6 digits, else DomainError (checked before any comparison)."""
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise DomainError("bad_pin", ERR_PIN, field="pin")
    return pin


def pin_verifier_make(pin: str) -> str:
    """What a tablet checks a PIN against offline: pbkdf2_sha256$iterations$salt$hash.

    A separate salted hash from the server's own (which tablets never see), slow enough to
    hold up a guess at every PIN for a while; see docs/security.md for what it cannot do.
    """
    iterations = int(current_app.config["KIOSK_PIN_VERIFIER_ITERATIONS"])
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations, dklen=32)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _pin_set(user: User, pin: str) -> None:
    pin = pin_validate(pin)
    user.pin_hash = _hash(pin)
    user.pin_verifier = pin_verifier_make(pin)


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
        _pin_set(user, pin)
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


def user_authenticate_pin(*, user_id, pin, place: str = "") -> User:
    """The active user `user_id` if `pin` is theirs, or DomainError (format checked first).

    Five wrong PINs in a row lock that user out at `place` (a browser's address) for ten
    minutes; the count is in the session, so the caller commits after a refusal too.
    """
    pin_validate(pin)
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.active or not user.pin_hash:
        raise DomainError("bad_pin", ERR_BAD_PIN, field="pin")
    place = (place or "")[:64]
    failure = db.session.scalar(select(PinFailure).where(
        PinFailure.user_id == user.id, PinFailure.place == place))
    now = utcnow()
    if failure is not None and failure.locked_until is not None and failure.locked_until > now:
        from ..clinic.selectors import settings_zone

        until = to_local(failure.locked_until, settings_zone()).strftime("%H:%M")
        raise DomainError("pin_locked", ERR_PIN_LOCKED.format(name=user.name, until=until),
                          field="pin")
    if not check_password_hash(user.pin_hash, pin):
        if failure is None:
            failure = PinFailure(user_id=user.id, place=place, failures=0)
            db.session.add(failure)
        failure.failures += 1
        if failure.failures >= PIN_TRIES:
            failure.failures, failure.locked_until = 0, now + PIN_LOCKOUT
            audit_record(action="user.pin_lockout", entity="user", entity_uid=user.uid,
                         detail={"place": place})
        raise DomainError("bad_pin", ERR_BAD_PIN, field="pin")
    if failure is not None:
        db.session.delete(failure)
    return user


ERR_LAST_MANAGER_SELF = ("You are the last active manager (level 6): make someone else a manager "
                         "before you demote or deactivate yourself.")
ERR_LAST_MANAGER = ("{name} is the last active manager (level 6): make someone else a manager "
                    "first.")
ERR_USERNAME_NEEDED = "Give the user a username to sign in with the password."


def _last_manager_check(user: User, actor, level: int, active: bool) -> None:
    """Refuse a change that would leave the clinic without an active level-6 user."""
    if not (user.active and user.level >= LEVEL_MANAGER) or (active and level >= LEVEL_MANAGER):
        return
    another = db.session.scalar(select(User.id).where(
        User.id != user.id, User.active.is_(True), User.level >= LEVEL_MANAGER).limit(1))
    if another is None:
        message = (ERR_LAST_MANAGER_SELF if actor is not None and actor.id == user.id
                   else ERR_LAST_MANAGER.format(name=user.name))
        raise DomainError("last_manager", message, field="active" if not active else "level")


def user_update(*, user: User, actor, name, level, active) -> User:
    """Change a user's name, level and whether they may sign in; one manager always stays."""
    permission_check(actor, LEVEL_MANAGER, "manage staff")
    name = text_required(name, "name", "Name", 120)
    level = int_optional(level, "level", "Level", 1, 6)
    if level is None:
        raise DomainError("required", "Level is required.", field="level")
    active = bool(active)
    _last_manager_check(user, actor, level, active)
    before = {"name": user.name, "level": user.level, "active": user.active}
    user.name, user.level, user.active = name, level, active
    db.session.flush()
    audit_record(action="user.update", entity="user", entity_uid=user.uid, user=actor,
                 detail={"before": before, "after": {"name": name, "level": level,
                                                     "active": active}})
    return user


def user_set_pin(*, user: User, actor, pin) -> User:
    """Give a user a new PIN (4–6 digits) for shared tablets."""
    permission_check(actor, LEVEL_MANAGER, "manage staff")
    _pin_set(user, pin)
    audit_record(action="user.set_pin", entity="user", entity_uid=user.uid, user=actor)
    return user


def user_set_password(*, user: User, actor, username, password) -> User:
    """Set a user's username and password for desktops (the username must be free)."""
    permission_check(actor, LEVEL_MANAGER, "manage staff")
    username = text_optional(username, "username", "Username", 60)
    if username is None:
        raise DomainError("required", ERR_USERNAME_NEEDED, field="username")
    before = user.username
    _set_login(user, username, password)
    audit_record(action="user.set_password", entity="user", entity_uid=user.uid, user=actor,
                 detail={"username_before": before, "username": user.username})
    return user
