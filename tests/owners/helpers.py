"""Builders and snapshots the owners' tests share."""

from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.extensions import db
from kiosk.owners.models import Owner
from kiosk.owners.services import owner_save
from kiosk.patients.models import Patient

GOOD = {"name": "Ann Smith", "email": "ann@example.com", "phone": "+44 7700 900123",
        "preferred_channel": "email", "sms_consent": True, "voice_consent": False}


def owner_make(user, **fields):
    """A committed owner saved by `user` (level 3 and up), GOOD unless told."""
    owner = owner_save(owner=None, user=user, **{**GOOD, **fields})
    db.session.commit()
    return owner


def count(model) -> int:
    """Rows of `model` as stored (the session's cache set aside)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def owners_state() -> list[tuple]:
    """Every owner's stored fields, and every patient's link and copies of them."""
    db.session.expire_all()
    owners = db.session.scalars(select(Owner).order_by(Owner.id)).all()
    patients = db.session.scalars(select(Patient).order_by(Patient.id)).all()
    return [
        [(o.uid, o.pims_id, o.name, o.email, o.phone, o.preferred_channel, o.sms_consent,
          o.voice_consent, o.opted_out_at, o.opted_out_via) for o in owners],
        [(p.uid, p.owner_id, p.owner_name, p.owner_phone) for p in patients],
        db.session.scalar(select(func.count(AuditEntry.id))),
    ]


def audits(action: str) -> list[AuditEntry]:
    """The audit rows of `action`, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.id)))
