"""The audit log: one row for every change, whoever or whatever made it."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .clock import utcnow
from .models import UTCDateTime


class AuditEntry(db.Model):
    """Who did what to which entity, when, from which device."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    user = relationship("User", lazy="joined")
    device = relationship("Device", lazy="joined")


def audit_record(*, action: str, entity: str, entity_uid: str | None, user=None, device=None,
                 detail: dict | None = None) -> AuditEntry:
    """Add an audit row to the current unit of work (committed with the change itself)."""
    entry = AuditEntry(
        action=action,
        entity=entity,
        entity_uid=entity_uid,
        user_id=user.id if user is not None else None,
        device_id=device.id if device is not None else None,
        detail=detail or {},
    )
    db.session.add(entry)
    return entry


def audit_recent(*, limit: int = 200, entity_uid: str | None = None) -> list[AuditEntry]:
    """The newest audit entries, optionally only those about one entity."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity_uid:
        query = query.where(AuditEntry.entity_uid == entity_uid)
    return list(db.session.scalars(query))
