"""The audit log: one row for every change, whoever or whatever made it."""

from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, insert, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from . import clock
from .models import UTCDateTime

AUDIT_ROWS = "audit_rows"  # session.info key: rows collected by audit_rows_together


class AuditEntry(db.Model):
    """Who did what to which entity, when, from which device."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    user = relationship("User", lazy="joined")
    device = relationship("Device", lazy="joined")


def audit_row(*, action: str, entity: str, entity_uid: str | None, user=None, device=None,
              detail: dict | None = None) -> dict:
    """An audit row's values (for an INSERT of its own, e.g. from a sending thread that
    holds a connection and no session)."""
    return {"action": action, "entity": entity, "entity_uid": entity_uid,
            "user_id": user.id if user is not None else None,
            "device_id": device.id if device is not None else None,
            "detail": detail or {}, "at": clock.utcnow()}


def audit_record(*, action: str, entity: str, entity_uid: str | None, user=None, device=None,
                 detail: dict | None = None) -> None:
    """Add an audit row to the current unit of work (committed with the change itself)."""
    row = audit_row(action=action, entity=entity, entity_uid=entity_uid, user=user,
                    device=device, detail=detail)
    together = db.session.info.get(AUDIT_ROWS)
    if together is not None:
        together.append(row)
    else:
        db.session.add(AuditEntry(**row))


@contextmanager
def audit_rows_together():
    """Collect the audit rows of a run of changes and write them in one INSERT at its end
    (a sync batch of a hundred ops); if the run fails, they are dropped with it."""
    rows = db.session.info[AUDIT_ROWS] = []
    try:
        yield
        if rows:
            db.session.execute(insert(AuditEntry), rows)
    finally:
        db.session.info.pop(AUDIT_ROWS, None)


def audit_recent(*, limit: int = 200, entity_uid: str | None = None) -> list[AuditEntry]:
    """The newest audit entries, optionally only those about one entity."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity_uid:
        query = query.where(AuditEntry.entity_uid == entity_uid)
    return list(db.session.scalars(query))
