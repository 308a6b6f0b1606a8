"""Helpers for the PIMS import tests: files, a snapshot of what an import may change."""

from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.extensions import db
from kiosk.intake.services import ImportRefused
from kiosk.patients.models import Patient

EXISTING_CSV = (b"pims_id,name,species,weight_kg,ward,cage,alerts\n"
                b"P-1,Biscuit,canine,10,ICU,1,bites\n")


def csv_bytes(*lines: str) -> bytes:
    """A CSV file from its lines."""
    return ("\n".join(lines) + "\n").encode()


def state() -> dict:
    """Everything an import may change, read fresh from the database."""
    db.session.expire_all()
    patients = db.session.scalars(select(Patient).order_by(Patient.id)).all()
    return {
        "patients": [(p.pims_id, p.name, p.species, p.weight_kg, p.ward_id, p.cage, p.alerts,
                      p.status, p.sex, p.date_of_birth) for p in patients],
        "audit": db.session.scalar(select(func.count(AuditEntry.id))),
    }


def problems(exc: ImportRefused) -> list[tuple]:
    """The refusal's problems as (row, field, message)."""
    return [(e.row, e.field, e.message) for e in exc.errors]
