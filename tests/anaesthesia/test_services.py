"""Anaesthesia sheets: merge, never delete; finalise, then addenda; values checked."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kiosk.anaesthesia.models import AnaesthesiaEntry, AnaesthesiaSheet
from kiosk.anaesthesia.selectors import sheet_view, sheets_of
from kiosk.anaesthesia.services import (
    anaesthesia_finalise,
    anaesthesia_record,
    anaesthesia_start,
)
from kiosk.core.errors import DomainError, Forbidden
from kiosk.extensions import db
from tests import factories

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def patient(clinic):
    return factories.patient_make(clinic, "Biscuit")


def started(clinic, patient, **header):
    sheet = anaesthesia_start(patient=patient, user=clinic.user(3), at=T0,
                              header=header or {"procedure": "Castration", "asa": "II"})
    db.session.commit()
    return sheet


def test_two_sheets_started_apart_merge_by_time_and_none_is_deleted(clinic, patient):
    first = anaesthesia_start(patient=patient, user=clinic.user(3), uid=str(uuid.uuid4()),
                              at=T0, header={"procedure": "Dental", "asa": "II"})
    second = anaesthesia_start(patient=patient, user=clinic.user(4), uid=str(uuid.uuid4()),
                               at=T0 + timedelta(minutes=1), header={"team": "Okafor, Leo"})
    db.session.commit()
    assert second is first, "the later start joins the open sheet"
    assert count(AnaesthesiaSheet) == 2  # both kept; the second points at the first
    joined = db.session.scalars(select(AnaesthesiaSheet).where(
        AnaesthesiaSheet.merged_into_id.is_not(None))).one()
    for minute, hr, sheet in ((10, 90, first), (5, 80, joined), (15, 100, joined)):
        anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="vitals", data={"hr": hr},
                           at=T0 + timedelta(minutes=minute))
    db.session.commit()
    view = sheet_view(first)
    assert [row.data["hr"] for row in view.vitals] == ["80", "90", "100"]
    assert view.header == {"procedure": "Dental", "asa": "II", "team": "Okafor, Leo"}
    assert sheets_of(patient) == [first]
    assert view.chart["lines"][0]["key"] == "hr"


def test_finalising_locks_the_sheet_and_later_entries_are_addenda(clinic, patient):
    sheet = started(clinic, patient)
    anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="drug",
                       data={"drug": "Methadone", "dose": "0.2 mg/kg", "route": "IV"}, at=T0)
    anaesthesia_finalise(sheet=sheet, user=clinic.user(3))
    db.session.commit()
    late = anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="note",
                              data={"text": "Recovered well."})
    db.session.commit()
    assert late.addendum and sheet.is_finalised
    view = sheet_view(sheet)
    assert [e.kind for e in view.addenda] == ["note"] and not view.notes
    assert [e.data["drug"] for e in view.drugs] == ["Methadone"]
    with pytest.raises(DomainError) as again:
        anaesthesia_finalise(sheet=sheet, user=clinic.user(4))
    assert again.value.code == "already_finalised"


def test_finalising_needs_the_procedure_and_asa_and_changes_nothing_without(clinic, patient):
    sheet = started(clinic, patient, team="Leo")
    with pytest.raises(DomainError) as missing:
        anaesthesia_finalise(sheet=sheet, user=clinic.user(3))
    assert (missing.value.code, missing.value.field) == ("required", "procedure")
    db.session.rollback()
    assert db.session.get(AnaesthesiaSheet, sheet.id).status == "open"


@pytest.mark.parametrize("data,field", [({"hr": "900"}, "hr"), ({"spo2": 120}, "spo2"),
                                        ({"hr": 80, "temp": "25"}, "temp")])
def test_vitals_outside_the_usual_range_ask_to_confirm(clinic, patient, data, field):
    sheet = started(clinic, patient)
    before = count(AnaesthesiaEntry)
    with pytest.raises(DomainError) as asked:
        anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="vitals", data=data)
    assert (asked.value.code, asked.value.field) == ("confirm_needed", field)
    assert "confirm" in asked.value.message
    db.session.rollback()
    assert count(AnaesthesiaEntry) == before
    entry = anaesthesia_record(sheet=sheet, user=clinic.user(3), kind="vitals", data=data,
                               confirmed=[field])
    db.session.commit()
    assert entry.confirmed == [field]


@pytest.mark.parametrize("kind,data,code,field", [
    ("vitals", {}, "required", None),
    ("vitals", {"hr": "fast"}, "not_a_number", "hr"),
    ("vitals", {"hr": 10**9}, "out_of_range", "hr"),
    ("vitals", {"pulse": 80}, "bad_args", "pulse"),
    ("drug", {"drug": "Propofol", "route": "IV"}, "required", "dose"),
    ("drug", {"drug": "Propofol", "dose": "4 mg/kg", "route": "vein"}, "bad_choice", "route"),
    ("event", {"event": "coffee"}, "bad_choice", "event"),
    ("header", {"asa": "VI"}, "bad_choice", "asa"),
    ("note", {"text": "  "}, "required", "text"),
    ("lunch", {"text": "x"}, "bad_choice", "kind"),
])
def test_bad_entries_are_refused_and_nothing_is_stored(clinic, patient, kind, data, code, field):
    sheet = started(clinic, patient)
    before = count(AnaesthesiaEntry)
    with pytest.raises(DomainError) as refused:
        anaesthesia_record(sheet=sheet, user=clinic.user(3), kind=kind, data=data)
    assert (refused.value.code, refused.value.field) == (code, field)
    db.session.rollback()
    assert count(AnaesthesiaEntry) == before


def test_recording_needs_level_3(clinic, patient):
    sheet = started(clinic, patient)
    with pytest.raises(Forbidden):
        anaesthesia_record(sheet=sheet, user=clinic.user(2), kind="note", data={"text": "x"})
    with pytest.raises(Forbidden):
        anaesthesia_start(patient=patient, user=clinic.user(2))


def test_a_start_after_the_last_sheet_was_finalised_is_a_new_anaesthetic(clinic, patient):
    first = started(clinic, patient)
    anaesthesia_finalise(sheet=first, user=clinic.user(3), at=T0 + timedelta(hours=1))
    db.session.commit()
    late_offline = anaesthesia_start(patient=patient, user=clinic.user(3),
                                     at=T0 + timedelta(minutes=30))
    assert late_offline is first, "started while the first was still open: joins it"
    second = anaesthesia_start(patient=patient, user=clinic.user(3),
                               at=T0 + timedelta(hours=3))
    db.session.commit()
    assert second is not first and not second.is_finalised
    assert sheets_of(patient) == [second, first]
