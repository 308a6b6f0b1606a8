"""Reads of staff users."""

from sqlalchemy import select

from ..core.errors import NotFound
from ..extensions import db
from .models import User


def users_list(*, active_only: bool = False) -> list[User]:
    """Staff by name."""
    query = select(User).order_by(User.name)
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
