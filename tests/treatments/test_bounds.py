"""How far an order reaches: one bounded window, tasks made lazily, the same uids offline."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kiosk.core.clock import format_iso_z, to_local, utcnow, zone
from kiosk.core.errors import DomainError
from kiosk.extensions import db
from kiosk.treatments import services
from kiosk.treatments.models import Order, Task, TaskCompletion
from kiosk.treatments.schedule import task_uid
from tests import factories
from tests.support.tablet import Tablet

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def counts() -> tuple[int, int, int]:
    db.session.expire_all()
    return tuple(db.session.scalar(select(func.count()).select_from(m))
                 for m in (Order, Task, TaskCompletion))


def _create(clinic, patient, now=NOW, **fields):
    data = {"name": "Fluids check", "kind": "task", "every_hours": 24, **fields}
    return services.order_create(user=clinic.user(5), patient=patient, data=data, now=now)


@pytest.mark.parametrize("fields, field", [
    ({"start": NOW - timedelta(days=3650)}, "start"),  # ten years back: 87,716 tasks before
    ({"start": NOW - timedelta(days=7, minutes=1)}, "start"),
    ({"start": NOW + timedelta(days=30, minutes=1)}, "start"),
    ({"start": NOW, "end": NOW + timedelta(days=90, minutes=1)}, "end"),
    ({"start": NOW - timedelta(days=7), "end": NOW + timedelta(days=3650)}, "end"),
])
def test_an_order_outside_the_window_is_refused_and_makes_nothing(clinic, fields, field):
    patient = factories.patient_make(clinic)
    before = counts()
    with pytest.raises(DomainError) as refused:
        _create(clinic, patient, **{k: format_iso_z(v) for k, v in fields.items()})
    db.session.rollback()
    assert refused.value.field == field and refused.value.code == "out_of_range"
    assert refused.value.message
    assert counts() == before


@pytest.mark.parametrize("fields", [
    {"start": NOW - timedelta(days=7)},
    {"start": NOW + timedelta(days=30)},
    {"start": NOW, "end": NOW + timedelta(days=90)},
])
def test_an_order_at_the_edges_of_the_window_is_made(clinic, fields):
    patient = factories.patient_make(clinic)
    order = _create(clinic, patient, **{k: format_iso_z(v) for k, v in fields.items()})
    db.session.commit()
    assert order.id is not None


def test_a_backdated_hourly_order_makes_a_bounded_number_of_tasks(clinic):
    """The most one order makes at once: a week back plus two days ahead, hourly."""
    patient = factories.patient_make(clinic)
    order = _create(clinic, patient, every_hours=1,
                    start=format_iso_z(NOW - timedelta(days=7)))
    db.session.commit()
    assert order.tasks_made == 7 * 24 + 48


def test_the_order_form_refuses_a_start_years_back_and_stores_nothing(clinic, client, login):
    patient = factories.patient_make(clinic)
    login(clinic.user(5))
    before = counts()
    start = to_local(utcnow() - timedelta(days=3650), zone("UTC")).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/patients/{patient.uid}/orders/new", data={
        "name": "Fluids", "kind": "task", "every_hours": "1", "start": start})
    assert response.status_code == 422
    assert "at most 7 days ago" in response.get_data(as_text=True)
    assert counts() == before


def test_the_order_op_refuses_a_start_years_back_naming_it(clinic, client):
    patient = factories.patient_make(clinic)
    tablet = Tablet(client)
    before = counts()
    op = tablet.op("order.create", {
        "order": str(uuid.uuid4()), "patient": patient.uid, "name": "Fluids", "kind": "task",
        "every_hours": 1, "start": format_iso_z(utcnow() - timedelta(days=3650))},
        clinic.user(5))
    result = tablet.post([op]).get_json()["results"][0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "out_of_range" and result["error"]["field"] == "start"
    assert counts() == before


def test_a_day_shown_ahead_of_upkeep_gets_its_tasks_with_the_tablets_uids(clinic, client,
                                                                          login):
    """Lazy generation: the sheet of a day five days ahead shows its tasks, made on demand
    with the uids a tablet computes (uuid5 of the order uid and the due time)."""
    patient = factories.patient_make(clinic)
    now = utcnow()
    order = factories.order_make(clinic, patient, every_hours=4,
                                 start=format_iso_z(now.replace(minute=0, second=0)))
    ahead = (now + timedelta(days=5)).date()
    login(clinic.user(1))
    response = client.get(f"/patients/{patient.uid}/sheet?day={ahead.isoformat()}")
    assert response.status_code == 200
    day_start = datetime(ahead.year, ahead.month, ahead.day, tzinfo=UTC)
    tasks = db.session.scalars(select(Task).where(
        Task.order_id == order.id, Task.due_at >= day_start,
        Task.due_at < day_start + timedelta(days=1))).all()
    assert len(tasks) == 6
    html = response.get_data(as_text=True)
    for task in tasks:
        assert task.uid == task_uid(order.uid, task.due_at) and task.uid in html
    again = client.get(f"/patients/{patient.uid}/sheet?day={ahead.isoformat()}")
    assert again.status_code == 200 and counts()[1] == db.session.scalar(
        select(func.count()).select_from(Task))


def test_a_sheet_far_ahead_makes_no_more_than_two_weeks_of_tasks(clinic, client, login):
    patient = factories.patient_make(clinic)
    now = utcnow()
    order = factories.order_make(clinic, patient, every_hours=1,
                                 start=format_iso_z(now.replace(minute=0, second=0)))
    login(clinic.user(1))
    far = (now + timedelta(days=2000)).date().isoformat()
    assert client.get(f"/patients/{patient.uid}/sheet?day={far}").status_code == 200
    latest = db.session.scalar(select(func.max(Task.due_at)).where(Task.order_id == order.id))
    # Against the clock after the request: the request's own clock may have passed an hour
    # (or midnight) since `now` was read, and two weeks from it is one task further on.
    assert latest <= utcnow() + timedelta(days=14)


def test_a_completion_at_a_time_the_order_has_no_task_is_refused(clinic, client):
    """A tablet may complete a task the server has not made yet, but only one of the order's
    own due times: another time (or the ends of the calendar) is refused, naming due_at."""
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, every_hours=4)
    tablet = Tablet(client)
    before = counts()
    for due in (order.start_at + timedelta(hours=4 * 20, minutes=30),
                order.start_at - timedelta(hours=4), order.start_at + timedelta(days=40)):
        op = tablet.op("task.complete", {"task": task_uid(order.uid, due), "order": order.uid,
                                         "due_at": format_iso_z(due)}, clinic.user(2))
        result = tablet.post([op]).get_json()["results"][0]
        assert result["status"] == "rejected", (due, result)
        assert result["error"]["field"] == "due_at", result
    assert counts() == before
    due = order.start_at + timedelta(hours=4 * 20)  # beyond the two days made: made now
    op = tablet.op("task.complete", {"task": task_uid(order.uid, due), "order": order.uid,
                                     "due_at": format_iso_z(due)}, clinic.user(2))
    assert tablet.post([op]).get_json()["results"][0]["status"] == "applied"


@pytest.mark.parametrize("tz", ["Pacific/Auckland", "America/Los_Angeles"])
@pytest.mark.parametrize("at", ["0001-01-01T00:00", "9999-12-31T23:59", "1899-01-01T00:00"])
def test_a_time_given_at_the_ends_of_the_calendar_is_a_form_error(app, client, login, tz, at):
    """The task dialog's "time given" in year 1 or 9999 on a clinic east or west of UTC:
    the form says what is wrong (field at), nothing is recorded, never a 500."""
    clinic = factories.clinic_make(timezone=tz)
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, every_hours=4)
    task = db.session.scalars(select(Task).where(Task.order_id == order.id)).first()
    login(clinic.user(3))
    before = counts()
    response = client.post(f"/tasks/{task.uid}/complete", data={"at": at})
    assert response.status_code == 422, response.status_code
    assert "between 1900 and 2199" in response.get_data(as_text=True)
    assert counts() == before


def test_an_anaesthesia_time_at_the_ends_of_the_calendar_is_a_form_error(app, client, login):
    from kiosk.anaesthesia.models import AnaesthesiaEntry

    clinic = factories.clinic_make(timezone="Pacific/Auckland")
    patient = factories.patient_make(clinic)
    login(clinic.user(3))
    response = client.post(f"/patients/{patient.uid}/anaesthesia", data={"procedure": "Spay"})
    sheet_uid = response.headers["Location"].rsplit("/", 1)[-1]
    before = db.session.scalar(select(func.count()).select_from(AnaesthesiaEntry))
    for at in ("0001-01-01T00:00", "9999-12-31T23:59"):
        response = client.post(f"/anaesthesia/{sheet_uid}/record",
                               data={"kind": "note", "text": "x", "at": at})
        assert response.status_code == 422, response.status_code
        assert "between 1900 and 2199" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AnaesthesiaEntry)) == before


def test_more_set_times_than_hours_in_a_day_is_refused(clinic):
    """Set times are at most 24 a day, so set times never make more tasks than hourly."""
    patient = factories.patient_make(clinic)
    before = counts()
    times = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
    with pytest.raises(DomainError) as refused:
        _create(clinic, patient, every_hours=None, times=times,
                start=format_iso_z(NOW - timedelta(days=7)))
    db.session.rollback()
    assert refused.value.field == "times" and refused.value.code == "too_many"
    assert counts() == before
    order = _create(clinic, patient, every_hours=None, times=times[::2])  # 24: fine
    assert order.tasks_made == 48
