"""Fixtures for the PIMS import tests: run an import, expect a refusal, a patient to update."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from kiosk.extensions import db
from kiosk.intake.services import ImportRefused, patients_import
from kiosk.patients.models import Patient

from .helpers import EXISTING_CSV, state


@pytest.fixture
def do_import(clinic):
    """do_import(content, filename='p.csv', level=4, **kw): import and commit; the summary."""

    def run(content: bytes, filename: str = "p.csv", level: int = 4, **kwargs):
        summary = patients_import(user=clinic.user(level), content=content, filename=filename,
                                  **kwargs)
        db.session.commit()
        return summary

    return run


@pytest.fixture
def existing(do_import):
    """Patient P-1 (Biscuit, 10 kg, ICU, bites), imported before the test."""
    do_import(EXISTING_CSV)
    patient = db.session.scalar(select(Patient).where(Patient.pims_id == "P-1"))
    assert patient.weight_kg == Decimal("10")
    return patient


@pytest.fixture
def refused(clinic):
    """refused(content, filename='p.csv', **kw): the ImportRefused, after checking that the
    service staged nothing and that the database is as it was."""

    def run(content: bytes | None = None, filename: str = "p.csv", **kwargs) -> ImportRefused:
        before = state()
        with pytest.raises(ImportRefused) as info:
            patients_import(user=clinic.user(4), content=content, filename=filename, **kwargs)
        assert not db.session.new and not db.session.dirty
        db.session.rollback()
        assert state() == before
        return info.value

    return run
