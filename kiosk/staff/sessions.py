"""People's sign-ins, kept on the server so that they can be ended.

A signed cookie alone cannot be taken back: a copy made before a sign-out would work for
its whole life. So each sign-in is a row (`StaffSession`) and the cookie carries a random
key naming it; `core.auth.current_user` accepts a cookie only while its row is live.

Why one row per sign-in rather than a counter per person: a nurse who locks a shared
tablet (which signs her out there) must not be signed out of the desktop she also uses.
Signing out ends this sign-in; a new password or PIN ends every sign-in of that person
(someone may know the old one); deactivating a person ends them all through `User.active`.
Like the services, these functions never commit: the view that calls them does.
"""

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update

from ..core import clock
from ..core.events import event_record
from ..extensions import db
from .models import StaffSession, User

AUTH_METHODS = ("password", "pin")


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _lifetime() -> timedelta:
    """How long a sign-in lasts at most: the cookie's own lifetime (30 days)."""
    return current_app.permanent_session_lifetime


def staff_session_start(*, user: User, auth: str, device=None) -> str:
    """A new sign-in of `user` (by `auth`, on the tablet `device` if any); its key, for the
    cookie. The person's ended and expired sign-ins are pruned here, so rows stay few."""
    if auth not in AUTH_METHODS:
        raise ValueError(f"unknown sign-in method {auth!r}")
    now = clock.utcnow()
    db.session.execute(delete(StaffSession).where(
        StaffSession.user_id == user.id,
        or_(StaffSession.ended_at.is_not(None), StaffSession.started_at <= now - _lifetime())))
    key = secrets.token_urlsafe(32)
    db.session.add(StaffSession(key_hash=_key_hash(key), user_id=user.id, auth=auth,
                                device_id=device.id if device is not None else None,
                                started_at=now))
    db.session.flush()
    return key


def staff_session_live(key, user_id) -> StaffSession | None:
    """The live sign-in a cookie's key names for `user_id`, or None (ended, expired, or
    never made: a cookie from before sign-ins were kept counts as signed out)."""
    if not isinstance(key, str) or not 20 <= len(key) <= 100 or not isinstance(user_id, int):
        return None
    return db.session.scalar(select(StaffSession).where(
        StaffSession.key_hash == _key_hash(key), StaffSession.user_id == user_id,
        StaffSession.ended_at.is_(None),
        StaffSession.started_at > clock.utcnow() - _lifetime()))


def staff_session_end(key) -> None:
    """End the sign-in `key` names (signing out); an unknown key changes nothing."""
    if not isinstance(key, str):
        return
    row = db.session.scalar(select(StaffSession).where(
        StaffSession.key_hash == _key_hash(key), StaffSession.ended_at.is_(None)))
    if row is not None:
        row.ended_at = clock.utcnow()
        event_record(db.session, "session.ended", user=row.user_id)


def user_sessions_end(user: User, *, keep=None) -> int:
    """End every live sign-in of `user` (a new password or PIN), except the one `keep`
    names (a manager changing their own password stays signed in where they did it).
    Answers how many were ended."""
    query = update(StaffSession).where(StaffSession.user_id == user.id,
                                       StaffSession.ended_at.is_(None))
    if isinstance(keep, str):
        query = query.where(StaffSession.key_hash != _key_hash(keep))
    ended = db.session.execute(query.values(ended_at=clock.utcnow())).rowcount
    if ended:
        event_record(db.session, "session.ended", user=user.id)
    return ended


def staff_sessions_dead(ids) -> set[int]:
    """Which of these sign-ins (row ids) are no longer live: for closing live connections."""
    ids = set(ids)
    if not ids:
        return set()
    live = set(db.session.scalars(select(StaffSession.id).where(
        StaffSession.id.in_(ids), StaffSession.ended_at.is_(None),
        StaffSession.started_at > clock.utcnow() - _lifetime())))
    return ids - live
