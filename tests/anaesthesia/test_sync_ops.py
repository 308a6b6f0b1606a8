"""Anaesthesia through the outbox: two tablets offline on one patient end with one sheet."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from kiosk.anaesthesia.models import AnaesthesiaEntry, AnaesthesiaSheet
from kiosk.anaesthesia.selectors import anaesthesia_sheet_by_uid, sheet_view, sheets_of
from kiosk.extensions import db
from tests import factories
from tests.support.tablet import Tablet, now_z


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_two_offline_tablets_merge_into_one_sheet_finalised_once(clinic, client):
    patient = factories.patient_make(clinic, "Biscuit")
    nurse, vet = clinic.user(3), clinic.user(5)
    a, b = Tablet(client, "Blue"), Tablet(client, "Green")
    sheet_a, sheet_b = str(uuid.uuid4()), str(uuid.uuid4())

    def vitals(tablet, sheet, minutes_ago, hr):
        return tablet.op("anaesthesia.record", {
            "entry": str(uuid.uuid4()), "sheet": sheet, "kind": "vitals",
            "at": now_z(-timedelta(minutes=minutes_ago)), "data": {"hr": hr, "spo2": 98}},
            nurse, at=now_z(-timedelta(minutes=minutes_ago)))

    ops_a = [a.op("anaesthesia.start", {"sheet": sheet_a, "patient": patient.uid,
                                        "procedure": "Dental", "asa": "II"}, nurse,
                  at=now_z(-timedelta(minutes=40))),
             vitals(a, sheet_a, 30, 90), vitals(a, sheet_a, 20, 95),
             a.op("anaesthesia.finalise", {"sheet": sheet_a}, nurse)]
    ops_b = [b.op("anaesthesia.start", {"sheet": sheet_b, "patient": patient.uid,
                                        "team": "Dr Okafor"}, vet,
                  at=now_z(-timedelta(minutes=39))),
             vitals(b, sheet_b, 25, 92), vitals(b, sheet_b, 15, 99),
             b.op("anaesthesia.finalise", {"sheet": sheet_b}, vet)]

    first = a.post(ops_a).get_json()
    assert [r["status"] for r in first["results"]] == ["applied"] * 4
    second = b.post(ops_b).get_json()
    statuses = [r["status"] for r in second["results"]]
    assert statuses == ["applied", "applied", "applied", "conflict"]
    assert second["results"][0]["result"]["joined"] == sheet_a
    assert second["results"][1]["result"] == {"entry": ops_b[1]["args"]["entry"],
                                              "sheet": sheet_a, "addendum": True}
    assert second["results"][3]["result"]["conflict"] == "already_finalised"

    # Again, as if the answers were lost: nothing doubles.
    assert {r["status"] for r in a.post(ops_a).get_json()["results"]} == {"duplicate"}
    assert count(AnaesthesiaSheet) == 2 and count(AnaesthesiaEntry) == 6  # 2 headers, 4 vitals

    db.session.expire_all()
    sheet = anaesthesia_sheet_by_uid(sheet_a)
    assert sheets_of(patient) == [sheet] and sheet.is_finalised
    view = sheet_view(sheet)
    # Tablet B's entries were recorded after A finalised: kept as addenda, in time order.
    assert [row.data["hr"] for row in view.vitals] == ["90", "95"]
    assert [row.data["hr"] for row in view.addenda if row.kind == "vitals"] == ["92", "99"]
    assert view.header["procedure"] == "Dental"


def test_a_bad_anaesthesia_op_is_rejected_alone(clinic, client):
    patient = factories.patient_make(clinic, "Biscuit")
    tablet = Tablet(client)
    sheet = str(uuid.uuid4())
    ops = [tablet.op("anaesthesia.start", {"sheet": sheet, "patient": patient.uid},
                     clinic.user(3)),
           tablet.op("anaesthesia.record", {"entry": str(uuid.uuid4()), "sheet": sheet,
                                            "kind": "vitals", "data": {"hr": 900}},
                     clinic.user(3)),
           tablet.op("anaesthesia.record", {"entry": str(uuid.uuid4()), "sheet": sheet,
                                            "kind": "vitals", "data": {"hr": 900},
                                            "confirmed": ["hr"]}, clinic.user(3)),
           tablet.op("anaesthesia.record", {"entry": str(uuid.uuid4()), "sheet": sheet,
                                            "kind": "note", "data": {"text": "x"}},
                     clinic.user(2))]
    body = tablet.post(ops).get_json()
    assert [r["status"] for r in body["results"]] == ["applied", "rejected", "applied",
                                                      "rejected"]
    assert body["results"][1]["error"]["code"] == "confirm_needed"
    assert body["results"][3]["error"]["code"] == "forbidden"
    assert body["last_seq"] == 4 and count(AnaesthesiaEntry) == 1


def test_an_entry_time_from_a_slow_tablet_clock_is_corrected_like_the_op(clinic, client,
                                                                       frozen_clock):
    """Two tablets' entries merge by time: a tablet 10 minutes slow must not sort its vitals
    10 minutes early."""
    patient = factories.patient_make(clinic, "Biscuit")
    tablet = Tablet(client)
    sheet = str(uuid.uuid4())
    slow = timedelta(minutes=-10)
    ops = [tablet.op("anaesthesia.start", {"sheet": sheet, "patient": patient.uid},
                     clinic.user(3), at=now_z(slow)),
           tablet.op("anaesthesia.record", {
               "entry": str(uuid.uuid4()), "sheet": sheet, "kind": "vitals",
               "at": now_z(slow - timedelta(minutes=5)), "data": {"hr": 88}},
               clinic.user(3), at=now_z(slow))]
    body = tablet.post(ops, sent_at=now_z(slow)).get_json()
    assert [r["status"] for r in body["results"]] == ["applied", "applied"]
    db.session.expire_all()
    entry = db.session.scalars(select(AnaesthesiaEntry).where(
        AnaesthesiaEntry.kind == "vitals")).one()
    assert entry.at == frozen_clock.now - timedelta(minutes=5), entry.at


def test_entries_on_a_sheet_whose_start_was_a_conflict_are_conflicts_too(clinic, client):
    from kiosk.discharge.services import patient_discharge

    patient = factories.patient_make(clinic, "Biscuit")
    patient_discharge(patient=patient, user=clinic.user(6), override_reason="Went home early")
    db.session.commit()
    a, nurse, sheet = Tablet(client, "Blue"), clinic.user(3), str(uuid.uuid4())
    answer = a.post([
        a.op("anaesthesia.start", {"sheet": sheet, "patient": patient.uid}, nurse,
             at=now_z(timedelta(minutes=1))),
        a.op("anaesthesia.record", {"entry": str(uuid.uuid4()), "sheet": sheet,
                                    "kind": "vitals", "data": {"hr": 80}}, nurse,
             at=now_z(timedelta(minutes=1)))]).get_json()
    assert [(r["status"], r["result"]["conflict"]) for r in answer["results"]] == [
        ("conflict", "not_admitted"), ("conflict", "after_conflict")]
    assert count(AnaesthesiaSheet) == 0 and count(AnaesthesiaEntry) == 0
