"""Counting rows, so bad-input tests can show that nothing changed."""

from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.extensions import db


def count(model) -> int:
    """How many rows `model`'s table holds."""
    return db.session.scalar(select(func.count()).select_from(model))


def audit_count() -> int:
    """How many audit rows exist (every stored change writes one)."""
    return count(AuditEntry)


def fresh(obj):
    """Re-read `obj` from the database (dropping what the session remembers)."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)
