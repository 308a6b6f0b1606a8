"""Column types and mixins shared by every feature's tables."""

import uuid
from datetime import datetime
from functools import cache

from sqlalchemy import DateTime, String, bindparam, select
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..extensions import db
from . import clock
from .clock import as_utc
from .errors import DomainError, NotFound


class UTCDateTime(TypeDecorator):
    """Stores naive UTC (portable across SQLite and PostgreSQL), returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Aware or naive-UTC in, naive UTC stored."""
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        """Naive UTC from the database, aware UTC out."""
        if value is None:
            return None
        return as_utc(value)


def new_uid() -> str:
    """A fresh public uid (UUID4 as text)."""
    return str(uuid.uuid4())


@cache
def _uid_query(model):
    return select(model.id).where(model.uid == bindparam("uid"))


def uid_check_free(model, uid: str, *, field: str, what: str) -> None:
    """DomainError `uid_taken` if a stored `model` row already has this uid.

    Asked without flushing the session: a row of this uid still pending in it is caught by
    the unique index when it is flushed (a sync batch then goes the careful way, op by op).
    """
    # One statement per model, run on the session's connection (its transaction, no ORM):
    # a sync batch asks this for every note, at a seventh of the cost of a session query.
    taken = db.session.connection().execute(_uid_query(model), {"uid": uid}).first()
    if taken is not None:
        raise DomainError("uid_taken", f"A {what} with this uid already exists.", field=field)


def row_by_uid(model, uid, *, what: str, field: str | None = None, options=()):
    """The `model` row with this public uid, or NotFound ("There is no {what} with that
    id.", naming `field`): the one "find by uid" of every selector, page and op."""
    row = db.session.scalar(select(model).where(model.uid == uid).options(*options)) \
        if isinstance(uid, str) else None
    if row is None:
        raise NotFound(f"There is no {what} with that id.", field=field)
    return row


class UidMixin:
    """A public, stable uid that devices may generate themselves."""

    uid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uid)


class TimestampMixin:
    """When a row was created and last changed (UTC)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow,
                                                 onupdate=clock.utcnow)
