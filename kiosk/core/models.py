"""Column types and mixins shared by every feature's tables."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .clock import as_utc, utcnow


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


class UidMixin:
    """A public, stable uid that devices may generate themselves."""

    uid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uid)


class TimestampMixin:
    """When a row was created and last changed (UTC)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
