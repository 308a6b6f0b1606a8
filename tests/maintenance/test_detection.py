"""Outages found by themselves: a tablet's batch that brings work performed well before it
arrived records one (or extends the one it overlaps); recent work records none; and
detection never fails or undoes a sync."""

import logging
import uuid
from datetime import timedelta

from sqlalchemy import event, func, select

from kiosk.core import clock
from kiosk.extensions import db
from kiosk.maintenance import detection
from kiosk.maintenance.models import MaintenanceWindow, Outage
from kiosk.treatments.models import Note
from tests import factories
from tests.support.tablet import Tablet, now_z


def outages() -> list[Outage]:
    db.session.expire_all()
    return list(db.session.scalars(select(Outage).order_by(Outage.started_at)))


def notes_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Note))


def note_ops(tablet, patient, user, minutes_ago: list[float]) -> list[dict]:
    return [tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                   "text": f"checked {m} min ago"}, user,
                      at=now_z(-timedelta(minutes=m))) for m in minutes_ago]


def post(tablet, ops) -> dict:
    db.session.remove()
    response = tablet.post(ops, outbox={"pending": len(ops),
                                        "oldest_at": ops[0]["at"] if ops else None})
    db.session.remove()
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_batch_of_work_done_ten_minutes_ago_records_one_outage(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)
    start = clock.utcnow() - timedelta(minutes=10)
    answer = post(tablet, note_ops(tablet, patient, clinic.user(3), [10, 7, 3]))
    assert {r["status"] for r in answer["results"]} == {"applied"}
    [outage] = outages()
    assert outage.cause == "detected" and outage.window_id is None
    assert (outage.started_at, outage.ended_at) == (start, clock.utcnow())
    assert outage.reviewed_at is None and outage.detected_at == clock.utcnow()


def test_a_second_batch_extends_the_outage_instead_of_adding_one(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-1")
    blue, green = Tablet(client, "Blue"), Tablet(client, "Green")
    first_end = clock.utcnow()
    post(blue, note_ops(blue, patient, clinic.user(3), [10]))
    frozen_clock.advance(minutes=3)  # the second tablet comes back later, with older work
    post(green, note_ops(green, patient, clinic.user(3), [25, 20]))
    [outage] = outages()
    assert outage.started_at == clock.utcnow() - timedelta(minutes=25)
    assert outage.ended_at == clock.utcnow() > first_end
    # The same tablet's next batch, inside the span, changes nothing more.
    post(green, note_ops(green, patient, clinic.user(3), [12]))
    [again] = outages()
    assert (again.id, again.started_at, again.ended_at) == (outage.id, outage.started_at,
                                                           outage.ended_at)


def test_work_done_seconds_ago_records_no_outage(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)
    post(tablet, note_ops(tablet, patient, clinic.user(3), [0.5, 0.1, 0]))
    post(tablet, [])  # a heartbeat
    assert outages() == []
    assert notes_count() == 3


def test_the_threshold_is_a_setting(app, clinic, client, frozen_clock):
    app.config["KIOSK_OUTAGE_DETECT_AFTER_S"] = 60 * 60
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)
    post(tablet, note_ops(tablet, patient, clinic.user(3), [30]))
    assert outages() == []
    post(tablet, note_ops(tablet, patient, clinic.user(3), [61]))
    assert len(outages()) == 1


def test_a_heartbeat_reporting_old_waiting_work_alone_records_nothing(clinic, client,
                                                                       frozen_clock):
    tablet = Tablet(client)
    db.session.remove()
    response = tablet.post([], outbox={"pending": 4,
                                       "oldest_at": now_z(-timedelta(hours=3))})
    assert response.status_code == 200
    assert outages() == []


def test_the_outbox_report_of_older_waiting_work_moves_the_start(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)
    ops = note_ops(tablet, patient, clinic.user(3), [10])
    db.session.remove()
    # 40 more wait on the tablet, the oldest from 50 minutes ago (a batch sent out of order
    # by an older page, say): the outage began by then.
    response = tablet.post(ops, outbox={"pending": 41, "oldest_at": now_z(-timedelta(minutes=50))})
    assert response.status_code == 200
    [outage] = outages()
    assert outage.started_at == clock.utcnow() - timedelta(minutes=50)


def test_a_windows_outage_is_extended_not_duplicated(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-1")
    now = clock.utcnow()
    window = MaintenanceWindow(starts_at=now - timedelta(minutes=30),
                               ends_at=now - timedelta(minutes=5), message="Upgrade",
                               state="ended", started_at=now - timedelta(minutes=30),
                               ended_at=now - timedelta(minutes=5))
    db.session.add(window)
    db.session.flush()
    db.session.add(Outage(cause="window", window_id=window.id,
                          started_at=now - timedelta(minutes=30),
                          ended_at=now - timedelta(minutes=5)))
    db.session.commit()
    window_id = window.id
    tablet = Tablet(client)
    post(tablet, note_ops(tablet, patient, clinic.user(3), [35, 20]))
    [outage] = outages()
    assert outage.cause == "window" and outage.window_id == window_id
    assert outage.started_at == now - timedelta(minutes=35)
    assert outage.ended_at == now  # when the tablet's work arrived


def test_a_window_under_way_keeps_its_open_end(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-1")
    now = clock.utcnow()
    window = MaintenanceWindow(starts_at=now - timedelta(minutes=8), ends_at=now +
                               timedelta(minutes=30), state="under_way",
                               started_at=now - timedelta(minutes=8))
    db.session.add(window)
    db.session.flush()
    db.session.add(Outage(cause="window", window_id=window.id,
                          started_at=now - timedelta(minutes=8)))
    db.session.commit()
    window_id = window.id
    tablet = Tablet(client)
    post(tablet, note_ops(tablet, patient, clinic.user(3), [7]))
    [outage] = outages()
    assert outage.window_id == window_id and outage.ended_at is None


def test_two_detected_outages_that_a_batch_joins_become_one(clinic, client, frozen_clock):
    now = clock.utcnow()
    db.session.add_all([
        Outage(cause="detected", started_at=now - timedelta(hours=3),
               ended_at=now - timedelta(hours=2)),
        Outage(cause="detected", started_at=now - timedelta(minutes=70),
               ended_at=now - timedelta(minutes=60))])
    db.session.commit()
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)
    post(tablet, note_ops(tablet, patient, clinic.user(3), [150]))  # 2.5 h ago
    [outage] = outages()
    assert outage.started_at == now - timedelta(hours=3) and outage.ended_at == now


def test_an_extended_outage_asks_for_review_again(clinic, client, frozen_clock):
    now = clock.utcnow()
    db.session.add(Outage(cause="detected", started_at=now - timedelta(minutes=30),
                          ended_at=now - timedelta(minutes=20), reviewed_at=now,
                          reviewed_by_id=clinic.user(6).id))
    db.session.commit()
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)
    post(tablet, note_ops(tablet, patient, clinic.user(3), [25]))
    [outage] = outages()
    assert outage.ended_at == now and outage.reviewed_at is None


def test_a_failing_detection_never_fails_the_sync(clinic, client, frozen_clock, monkeypatch,
                                                   caplog):
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)

    def broken(**kwargs):
        raise RuntimeError("the outages table is locked")

    monkeypatch.setattr(detection, "outage_detect", broken)
    with caplog.at_level(logging.ERROR):
        answer = post(tablet, note_ops(tablet, patient, clinic.user(3), [10, 9]))
    assert [r["status"] for r in answer["results"]] == ["applied", "applied"]
    assert notes_count() == 2 and outages() == []
    assert "outage detection failed" in caplog.text


def test_a_failing_look_before_the_commit_never_fails_the_sync(clinic, client, frozen_clock,
                                                               monkeypatch, caplog):
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)

    def broken(*args, **kwargs):
        raise RuntimeError("no such column")

    monkeypatch.setattr(detection, "offline_work", broken)
    with caplog.at_level(logging.ERROR):
        answer = post(tablet, note_ops(tablet, patient, clinic.user(3), [10]))
    assert answer["results"][0]["status"] == "applied"
    assert notes_count() == 1 and outages() == []
    assert "detect_prepare" in caplog.text


def test_detection_asks_one_query_of_a_batch(clinic, client, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-1")
    tablet = Tablet(client)
    post(tablet, note_ops(tablet, patient, clinic.user(3), [10, 8, 6, 4]))
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    device = db.session.get(type(tablet.device), tablet.device.id)  # loaded, as sync has it
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        work = detection.offline_work(db.session, device.id,
                                      after=timedelta(minutes=5))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert work is not None and work.performed_at == clock.utcnow() - timedelta(minutes=10)
    assert len(statements) == 1
