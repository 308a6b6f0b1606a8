"""Settings and wards: the services, on the database."""

import pytest
from sqlalchemy import select

from kiosk.clinic.models import ClinicSettings, Ward
from kiosk.clinic.selectors import settings_get
from kiosk.clinic.services import settings_update
from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError, Forbidden
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.live.pokes import pokes_for
from kiosk.patients.models import Patient
from kiosk.staff.services import user_create
from kiosk.whiteboards.models import Board
from kiosk.whiteboards.wards import (
    ERR_WARD_IN_USE,
    ERR_WARD_TAKEN,
    ward_create,
    ward_delete,
    ward_update,
)

from ..factories import patient_make
from .helpers import audit_count, count, fresh

GOOD = {"name": "Riverside Vets", "timezone": "Europe/London", "board_hours_back": "3",
        "board_hours_ahead": "12", "due_grace_minutes": "20", "board_rotate_seconds": "30",
        "allow_direct_patient_creation": True}


def _settings_values() -> dict:
    row = settings_get()
    return {key: getattr(row, key) for key in GOOD}


def test_settings_update_creates_the_row_when_there_is_none(app):
    manager = user_create(name="Boss", level=6, pin="123456")
    db.session.commit()
    assert count(ClinicSettings) == 0

    settings_update(actor=manager, data=GOOD)
    db.session.commit()

    row = db.session.scalars(select(ClinicSettings)).one()
    assert (row.name, row.timezone, row.board_hours_back, row.board_hours_ahead,
            row.due_grace_minutes, row.board_rotate_seconds) == (
        "Riverside Vets", "Europe/London", 3, 12, 20, 30)
    assert row.allow_direct_patient_creation is True
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "settings.update")
                               ).one()
    assert entry.user_id == manager.id


def test_settings_update_changes_the_existing_row_and_pokes_every_board(clinic):
    settings_update(actor=clinic.user(6), data={**GOOD, "allow_direct_patient_creation": False})
    events = list(db.session.info.get("pending_events", []))
    db.session.commit()

    assert count(ClinicSettings) == 1
    assert fresh(clinic.settings).name == "Riverside Vets"
    assert fresh(clinic.settings).allow_direct_patient_creation is False
    assert [e.name for e in events if e.name.endswith(".changed")] == ["settings.changed"]
    pokes = [poke for _room, poke in pokes_for(events) if poke["topic"] == "board"]
    assert pokes == [{"topic": "board", "board": clinic.board.id, "version": pokes[0]["version"]}]


def test_settings_invalid_time_zone_is_refused_and_nothing_changes(clinic):
    before, audits = _settings_values(), audit_count()
    with pytest.raises(DomainError) as exc:
        settings_update(actor=clinic.user(6), data={**GOOD, "timezone": "Mars/Olympus"})
    db.session.rollback()
    assert exc.value.code == "bad_timezone"
    assert exc.value.field == "timezone"
    assert "Mars/Olympus" in exc.value.message
    assert _settings_values() == before
    assert audit_count() == audits


@pytest.mark.parametrize(("field", "value"), [
    ("board_hours_back", "-1"), ("board_hours_back", "13"),
    ("board_hours_ahead", "0"), ("board_hours_ahead", "25"),
    ("due_grace_minutes", "-5"), ("due_grace_minutes", "121"),
    ("board_rotate_seconds", "4"), ("board_rotate_seconds", "301"),
])
def test_settings_out_of_range_numbers_are_refused(clinic, field, value):
    before, audits = _settings_values(), audit_count()
    with pytest.raises(DomainError) as exc:
        settings_update(actor=clinic.user(6), data={**GOOD, field: value})
    db.session.rollback()
    assert exc.value.code == "out_of_range"
    assert exc.value.field == field
    assert "must be between" in exc.value.message
    assert _settings_values() == before
    assert audit_count() == audits


@pytest.mark.parametrize(("field", "value", "code"), [
    ("board_hours_ahead", "ten", "not_a_number"),
    ("board_rotate_seconds", "", "required"),
    ("name", "   ", "required"),
    ("timezone", "", "required"),
])
def test_settings_missing_or_non_numbers_are_refused(clinic, field, value, code):
    before = _settings_values()
    with pytest.raises(DomainError) as exc:
        settings_update(actor=clinic.user(6), data={**GOOD, field: value})
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == (code, field)
    assert _settings_values() == before


def test_settings_need_a_manager(clinic):
    before = _settings_values()
    with pytest.raises(Forbidden) as exc:
        settings_update(actor=clinic.user(5), data=GOOD)
    db.session.rollback()
    assert "level 6" in exc.value.message
    assert _settings_values() == before


def test_ward_create_makes_its_board(clinic):
    ward = ward_create(actor=clinic.user(6), name="  Surgery ", code="SX")
    db.session.commit()
    assert (ward.name, ward.code) == ("Surgery", "SX")
    board = db.session.scalars(select(Board).where(Board.ward_id == ward.id)).one()
    assert (board.name, board.kind) == ("Surgery board", "ward")
    assert count(AuditEntry) >= 2


def test_ward_create_keeps_an_existing_board_of_that_name(clinic):
    db.session.add(Board(name="Surgery board", kind="list"))
    db.session.commit()
    ward = ward_create(actor=clinic.user(6), name="Surgery")
    db.session.commit()
    assert count(Board) == 2
    assert db.session.scalar(select(Board).where(Board.ward_id == ward.id)) is None


@pytest.mark.parametrize("name", ["ICU", "icu", " ICU "])
def test_duplicate_ward_name_is_refused(clinic, name):
    wards, boards, audits = count(Ward), count(Board), audit_count()
    with pytest.raises(DomainError) as exc:
        ward_create(actor=clinic.user(6), name=name)
    db.session.rollback()
    assert exc.value.code == "ward_taken"
    assert exc.value.field == "name"
    assert exc.value.message == ERR_WARD_TAKEN.format(name=name.strip())
    assert (count(Ward), count(Board), audit_count()) == (wards, boards, audits)


def test_ward_create_needs_a_name(clinic):
    wards = count(Ward)
    with pytest.raises(DomainError) as exc:
        ward_create(actor=clinic.user(6), name="")
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == ("required", "name")
    assert count(Ward) == wards


def test_ward_rename_renames_its_board(clinic):
    ward_update(ward=clinic.ward, actor=clinic.user(6), name="Intensive care", code="IC")
    db.session.commit()
    assert fresh(clinic.ward).name == "Intensive care"
    assert fresh(clinic.board).name == "Intensive care board"


def test_ward_rename_to_a_taken_name_is_refused(clinic):
    ward_create(actor=clinic.user(6), name="Surgery")
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        ward_update(ward=clinic.ward, actor=clinic.user(6), name="surgery")
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == ("ward_taken", "name")
    assert fresh(clinic.ward).name == "ICU"
    assert fresh(clinic.board).name == "ICU board"


def test_ward_rename_to_its_own_name_is_fine(clinic):
    ward_update(ward=clinic.ward, actor=clinic.user(6), name="ICU", code="I")
    db.session.commit()
    assert fresh(clinic.ward).code == "I"


def test_deleting_a_ward_with_admitted_patients_is_refused(clinic):
    patient_make(clinic, "Biscuit")
    wards, boards, audits = count(Ward), count(Board), audit_count()
    with pytest.raises(DomainError) as exc:
        ward_delete(ward=clinic.ward, actor=clinic.user(6))
    db.session.rollback()
    assert exc.value.code == "ward_in_use"
    assert exc.value.message == ERR_WARD_IN_USE.format(name="ICU", count=1)
    assert (count(Ward), count(Board), audit_count()) == (wards, boards, audits)
    assert db.session.scalar(select(Patient.ward_id)) == clinic.ward.id


def test_deleting_a_ward_with_only_discharged_patients(clinic):
    patient = patient_make(clinic, "Biscuit")
    patient_discharge(patient=patient, user=clinic.user(6))
    db.session.commit()
    ward_id = clinic.ward.id
    ward_delete(ward=clinic.ward, actor=clinic.user(6))
    db.session.commit()
    assert db.session.get(Ward, ward_id) is None
    assert count(Board) == 0
    assert fresh(patient).ward_id is None
    assert fresh(patient).status == "discharged"
