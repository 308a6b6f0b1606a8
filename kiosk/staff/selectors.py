"""Reads of staff users."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..core.errors import NotFound
from ..extensions import db
from .models import User, users_wards


def users_list(*, active_only: bool = False) -> list[User]:
    """Staff by name (with their wards, in one more query for all of them)."""
    query = select(User).options(selectinload(User.wards)).order_by(User.name)
    if active_only:
        query = query.where(User.active.is_(True))
    return list(db.session.scalars(query))


def users_with_pin() -> list[User]:
    """Active staff who can sign in on a shared tablet, by name."""
    return list(db.session.scalars(
        select(User).where(User.active.is_(True), User.pin_hash.is_not(None)).order_by(User.name)))


def user_by_id(user_id: int) -> User:
    """The user with this id, or NotFound."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("There is no user with that id.")
    return user


def users_for_tablet(device) -> list[User]:
    """The people a tablet's lock screen offers, whose PIN verifiers it may keep: active,
    with a PIN of the length their level needs, working on one of the tablet's wards."""
    from .services import LONG_PIN, LONG_PIN_LEVEL

    query = select(User).where(
        User.active.is_(True), User.pin_hash.is_not(None), User.pin_verifier.is_not(None),
        # A level 5–6 PIN shorter than 6 digits is refused at sign-in: its verifier (ten
        # thousand values) only helps whoever extracts it.
        (User.level < LONG_PIN_LEVEL) | (User.pin_length >= LONG_PIN))
    wards = device.wards_worked()  # its ward and its picked patients' (devices)
    if wards is not None:
        query = query.where(User.id.in_(
            select(users_wards.c.user_id).where(users_wards.c.ward_id.in_(wards))))
    return list(db.session.scalars(query.order_by(User.name)))
