"""Writes for staff users: create, and check a password or a PIN."""

import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.validate import int_optional, text_optional, text_required
from ..extensions import db
from .models import PinFailure, User
from .sessions import user_sessions_end

PIN_RE = re.compile(r"^\d{4,6}$")
USERNAME_RE = re.compile(r"^[a-z0-9._-]{2,60}$")
MIN_PASSWORD = 8
# Levels 5 and 6 may do the most, so their PINs (and the verifiers tablets keep) have a
# million values rather than ten thousand.
LONG_PIN_LEVEL = 5
LONG_PIN = 6

ERR_PIN = "A PIN is 4 to 6 digits."
ERR_PIN_LONG = f"A PIN for level {LONG_PIN_LEVEL} and 6 is {LONG_PIN} digits."
ERR_PIN_LONG_NEEDED = (f"{{name}} has a PIN of fewer than {LONG_PIN} digits: give them a new "
                       f"{LONG_PIN}-digit PIN first, then level {{level}}.")
ERR_PIN_RESET = (f"Level {LONG_PIN_LEVEL} and 6 sign in with a {LONG_PIN}-digit PIN: "
                 "ask a manager for a new one.")
ERR_USERNAME = "A username is 2–60 lower-case letters, digits, dots, dashes or underscores."
ERR_PASSWORD = f"A password has at least {MIN_PASSWORD} characters."
ERR_USERNAME_TAKEN = "That username is taken."
ERR_NO_SIGN_IN = "Give the user a PIN or a username and password, or both."
# One message for every refused password, locked or not, so that it never tells whether
# a username exists.
ERR_BAD_LOGIN = ("Wrong username or password. After 5 wrong tries in a row an account waits "
                 "a minute, then longer each time; a manager can unlock it.")
ERR_BAD_PIN = "Wrong name or PIN."
ERR_PIN_LOCKED = ("Too many wrong PINs or passwords: {name} is locked out until {until}. "
                  "Someone else can sign in meanwhile; a manager can unlock {name}.")
ERR_PLACE_LOCKED = ("Too many wrong PINs on this tablet: PIN sign-in here waits until "
                    "{until}. A password still works.")
ERR_BAD_WARD = "Choose wards from the list."

# Wrong passwords or PINs in a row (from anywhere) before a user must wait, how long the
# first wait is, and the longest one: each further wrong try doubles it (1, 2, 4 … 60
# minutes). A guesser gets about 30 tries a day; someone locking a colleague out on
# purpose holds them for an hour at most per try, and a manager can unlock them. A tablet's
# own lock screen (static/js/lock.js) uses the same numbers, handed to it with the staff list.
PIN_TRIES = 5
PIN_LOCKOUT = timedelta(minutes=1)
PIN_LOCKOUT_MAX = timedelta(minutes=60)
# Wrong PINs in a row at one tablet, for anyone, before PIN sign-in waits there too.
PLACE_TRIES = 10


def pin_long_enough(level: int, length: int | None) -> bool:
    """The PIN-length rule: levels 5 and 6 need 6 digits (`length` None: not known)."""
    return level < LONG_PIN_LEVEL or (length or 0) >= LONG_PIN


def lockout_delay(failures: int) -> timedelta | None:
    """How long sign-in waits after `failures` wrong tries in a row (None: not yet)."""
    if failures < PIN_TRIES:
        return None
    doublings = min(failures - PIN_TRIES, 12)  # 2**12 minutes is far past the cap
    return min(PIN_LOCKOUT * (2 ** doublings), PIN_LOCKOUT_MAX)


def _hash(secret: str) -> str:
    """A salted hash of a password or PIN (scrypt; the test profile uses a faster method)."""
    return generate_password_hash(secret, method=current_app.config["KIOSK_PASSWORD_HASH"])


def pin_validate(pin, level: int | None = None) -> str:
    """The PIN if it is 4–6 digits (exactly 6 for level 5 and up), else DomainError.

    The one rule for a PIN's shape: the admin form, the command line, a PIN change, a
    level change and sign-in all use it, before any comparison.
    """
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise DomainError("bad_pin", ERR_PIN, field="pin")
    if level is not None and not pin_long_enough(level, len(pin)):
        raise DomainError("short_pin", ERR_PIN_LONG, field="pin")
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


def pin_verifier_iterations(user: User) -> int | None:
    """The PBKDF2 rounds of the user's PIN verifier (None without one)."""
    try:
        return int((user.pin_verifier or "").split("$")[1])
    except (IndexError, ValueError):
        return None


def pin_is_weak(user: User) -> bool:
    """True when the user's PIN needs resetting: its verifier has fewer rounds than new
    ones get, or the user is level 5+ with a PIN that may be shorter than 6 digits (PINs
    are never kept, so an old verifier cannot be strengthened in place)."""
    if not user.pin_hash:
        return False
    rounds = pin_verifier_iterations(user) or 0
    if rounds < int(current_app.config["KIOSK_PIN_VERIFIER_ITERATIONS"]):
        return True
    return not pin_long_enough(user.level, user.pin_length)


def _pin_set(user: User, pin: str, level: int) -> None:
    pin = pin_validate(pin, level)
    user.pin_hash = _hash(pin)
    user.pin_verifier = pin_verifier_make(pin)
    user.pin_length = len(pin)


def _wards_resolve(ward_ids) -> list:
    """The wards named by id (ints or digit strings); None means every ward."""
    from ..clinic.models import Ward

    if ward_ids is None:
        return list(db.session.scalars(select(Ward).order_by(Ward.name)))
    ids = set()
    for raw in ward_ids:
        if isinstance(raw, int) and not isinstance(raw, bool):
            ids.add(raw)
        elif isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) < 10:
            ids.add(int(raw.strip()))
        else:
            raise DomainError("bad_ward", ERR_BAD_WARD, field="wards")
    wards = list(db.session.scalars(select(Ward).where(Ward.id.in_(ids)).order_by(Ward.name)))
    if len(wards) != len(ids):
        raise DomainError("bad_ward", ERR_BAD_WARD, field="wards")
    return wards


def user_create(*, name, level, pin=None, username=None, password=None, actor=None,
                wards=None) -> User:
    """A new staff member with a level 1–6 and a PIN and/or a username and password.

    `wards` are the ids of the wards they work on (None: every ward there is).
    """
    name = text_required(name, "name", "Name", 120)
    level = int_optional(level, "level", "Level", 1, 6)
    if level is None:
        raise DomainError("required", "Level is required.", field="level")
    pin = text_optional(pin, "pin", "PIN", 6)
    username = text_optional(username, "username", "Username", 60)
    if pin is None and (username is None or not password):
        raise DomainError("required", ERR_NO_SIGN_IN, field="pin")
    ward_rows = _wards_resolve(wards)
    user = User(name=name, level=level, sign_in_failures=0)
    if pin is not None:
        _pin_set(user, pin, level)
    if username is not None:
        _set_login(user, username, password)
    user.wards = ward_rows
    db.session.add(user)
    db.session.flush()
    audit_record(action="user.create", entity="user", entity_uid=user.uid, user=actor,
                 detail={"name": name, "level": level,
                         "wards": [w.name for w in ward_rows]})
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


# ---- Throttling wrong passwords and PINs -------------------------------------------------

def _until_text(at) -> str:
    from ..clinic.selectors import settings_zone

    return clock.to_local(at, settings_zone()).strftime("%H:%M")


def _is_locked(locked_until, now) -> bool:
    return locked_until is not None and locked_until > now


def _user_failed(user: User, now, *, how: str, device=None) -> None:
    """Count one wrong password or PIN for `user`; from the 5th in a row on, lock them out
    for a growing delay and say so in the audit log. The count is added in SQL, so two
    processes counting at once both count."""
    db.session.execute(update(User).where(User.id == user.id)
                       .values(sign_in_failures=User.sign_in_failures + 1))
    db.session.refresh(user, ["sign_in_failures"])
    delay = lockout_delay(user.sign_in_failures)
    if delay is not None:
        user.locked_until = now + delay
        audit_record(action="user.lockout", entity="user", entity_uid=user.uid, device=device,
                     detail={"failures": user.sign_in_failures, "how": how,
                             "minutes": int(delay.total_seconds() // 60)})


def _user_succeeded(user: User) -> None:
    if user.sign_in_failures or user.locked_until is not None:
        user.sign_in_failures, user.locked_until = 0, None


def _place_row(place: str) -> PinFailure:
    """The count of wrong PINs at `place`, made on first use (safe against a second process
    making it at the same moment)."""
    row = db.session.scalar(select(PinFailure).where(PinFailure.place == place))
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = PinFailure(place=place, failures=0)
            db.session.add(row)
    except IntegrityError:
        row = db.session.scalar(select(PinFailure).where(PinFailure.place == place))
    return row


def _place_failed(place: str, now, device=None) -> None:
    row = _place_row(place)
    db.session.execute(update(PinFailure).where(PinFailure.id == row.id)
                       .values(failures=PinFailure.failures + 1))
    db.session.refresh(row, ["failures"])
    # The user's schedule, shifted: the 10th wrong PIN here waits a minute, the 11th two …
    delay = lockout_delay(row.failures - (PLACE_TRIES - PIN_TRIES))
    if delay is not None:
        row.locked_until = now + delay
        audit_record(action="device.pin_lockout", entity="device", entity_uid=place,
                     device=device, detail={"failures": row.failures,
                                            "minutes": int(delay.total_seconds() // 60)})


def user_authenticate_password(*, username, password) -> User:
    """The active user with this username and password, or DomainError.

    Every refusal has the same message (locked or not, known username or not). A locked
    user is refused even with the right password, and a wrong one counts towards the lock;
    the caller commits after a refusal too, so that the count is kept.
    """
    user = db.session.scalar(select(User).where(User.username == (username or "").strip().lower()))
    if user is None or not user.active or not user.password_hash:
        raise DomainError("bad_login", ERR_BAD_LOGIN, field="password")
    now = clock.utcnow()
    if _is_locked(user.locked_until, now):
        raise DomainError("bad_login", ERR_BAD_LOGIN, field="password")
    if not check_password_hash(user.password_hash, password or ""):
        _user_failed(user, now, how="password")
        raise DomainError("bad_login", ERR_BAD_LOGIN, field="password")
    _user_succeeded(user)
    return user


def user_authenticate_pin(*, user_id, pin, device=None) -> User:
    """The active user `user_id` if `pin` is theirs, or DomainError (format checked first).

    Wrong PINs count for the user wherever they are typed (with wrong passwords: 5 in a row
    lock them out for a minute, doubling up to an hour), and for the tablet `device` they
    are typed on (10 in a row, whoever for, hold PIN sign-in there). The counts are in the
    session, so the caller commits after a refusal too.
    """
    pin_validate(pin)
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.active or not user.pin_hash:
        raise DomainError("bad_pin", ERR_BAD_PIN, field="pin")
    if not pin_long_enough(user.level, len(pin)):
        # Refused before any check and never counted: the shape is wrong, not the PIN.
        raise DomainError("short_pin", ERR_PIN_RESET, field="pin")
    now = clock.utcnow()
    if _is_locked(user.locked_until, now):
        raise DomainError("pin_locked", ERR_PIN_LOCKED.format(
            name=user.name, until=_until_text(user.locked_until)), field="pin")
    place = device.public_id if device is not None else None
    row = (db.session.scalar(select(PinFailure).where(PinFailure.place == place))
           if place else None)
    if row is not None and _is_locked(row.locked_until, now):
        raise DomainError("place_locked", ERR_PLACE_LOCKED.format(
            until=_until_text(row.locked_until)), field="pin")
    if not check_password_hash(user.pin_hash, pin):
        _user_failed(user, now, how="pin", device=device)
        if place:
            _place_failed(place, now, device)
        raise DomainError("bad_pin", ERR_BAD_PIN, field="pin")
    _user_succeeded(user)
    if row is not None:
        db.session.delete(row)
    return user


def user_is_locked(user: User) -> bool:
    """True while wrong tries keep `user` from signing in."""
    return _is_locked(user.locked_until, clock.utcnow())


def user_unlock(*, user: User, actor) -> User:
    """A manager lets a locked-out user sign in again at once (their count starts over).

    `actor` None is the command line, which only whoever runs the server can use.
    """
    if actor is not None:
        permission_check(actor, LEVEL_MANAGER, "unlock staff")
    before = {"failures": user.sign_in_failures,
              "locked_until": user.locked_until.isoformat() if user.locked_until else None}
    user.sign_in_failures, user.locked_until = 0, None
    audit_record(action="user.unlock", entity="user", entity_uid=user.uid, user=actor,
                 detail=before)
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


def user_update(*, user: User, actor, name, level, active, wards=None) -> User:
    """Change a user's name, level, wards and whether they may sign in; one manager always
    stays. Raising someone to level 5 or 6 needs a 6-digit PIN first (or no PIN).
    `wards`: the ids of the wards they work on (None leaves them as they are).
    Deactivating ends the person's sign-ins for good: making them active again later does
    not bring back a cookie someone copied meanwhile."""
    permission_check(actor, LEVEL_MANAGER, "manage staff")
    name = text_required(name, "name", "Name", 120)
    level = int_optional(level, "level", "Level", 1, 6)
    if level is None:
        raise DomainError("required", "Level is required.", field="level")
    active = bool(active)
    _last_manager_check(user, actor, level, active)
    if user.pin_hash and level > user.level and not pin_long_enough(level, user.pin_length):
        raise DomainError("short_pin", ERR_PIN_LONG_NEEDED.format(name=user.name, level=level),
                          field="level")
    ward_rows = _wards_resolve(wards) if wards is not None else None
    before = {"name": user.name, "level": user.level, "active": user.active}
    after = {"name": name, "level": level, "active": active}
    if ward_rows is not None:
        before["wards"] = [w.name for w in user.wards]
        after["wards"] = [w.name for w in ward_rows]
        user.wards = ward_rows
    user.name, user.level, user.active = name, level, active
    if not active:
        user_sessions_end(user)
    db.session.flush()
    audit_record(action="user.update", entity="user", entity_uid=user.uid, user=actor,
                 detail={"before": before, "after": after})
    return user


def user_set_pin(*, user: User, actor, pin, keep_sign_in=None) -> User:
    """Give a user a new PIN for shared tablets (4–6 digits; 6 for level 5 and up).

    Every sign-in of that person ends (whoever knew the old PIN is out), except the one
    `keep_sign_in` names: the manager's own, when they change their own PIN.
    """
    permission_check(actor, LEVEL_MANAGER, "manage staff")
    _pin_set(user, pin, user.level)
    user_sessions_end(user, keep=keep_sign_in)
    audit_record(action="user.set_pin", entity="user", entity_uid=user.uid, user=actor)
    return user


def user_set_password(*, user: User, actor, username, password, keep_sign_in=None) -> User:
    """Set a user's username and password for desktops (the username must be free).

    Every sign-in of that person ends but the one `keep_sign_in` names, as for a new PIN.
    """
    permission_check(actor, LEVEL_MANAGER, "manage staff")
    username = text_optional(username, "username", "Username", 60)
    if username is None:
        raise DomainError("required", ERR_USERNAME_NEEDED, field="username")
    before = user.username
    _set_login(user, username, password)
    user_sessions_end(user, keep=keep_sign_in)
    audit_record(action="user.set_password", entity="user", entity_uid=user.uid, user=actor,
                 detail={"username_before": before, "username": user.username})
    return user
