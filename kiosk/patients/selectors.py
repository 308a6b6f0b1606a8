"""Reads of patients shaped for lists and sheets."""

from sqlalchemy import func, select

from ..core.models import row_by_uid
from ..extensions import db
from .models import Patient


def patient_by_uid(uid: str) -> Patient:
    """The patient with this uid, or NotFound."""
    return row_by_uid(Patient, uid, what="patient", field="patient")


def patients_list(*, status: str | None = "admitted", unallocated: bool | None = None
                  ) -> list[Patient]:
    """Patients by ward and name, admitted by default; optionally only unallocated ones."""
    query = select(Patient).order_by(Patient.ward_id, Patient.name)
    if status:
        query = query.where(Patient.status == status)
    if unallocated is not None:
        query = query.where(Patient.unallocated.is_(unallocated))
    return list(db.session.scalars(query))


def admitted_counts_by_ward() -> dict[int, int]:
    """How many admitted patients each ward has (wards with none are absent)."""
    return dict(db.session.execute(
        select(Patient.ward_id, func.count(Patient.id))
        .where(Patient.status == "admitted", Patient.ward_id.is_not(None))
        .group_by(Patient.ward_id)).all())
