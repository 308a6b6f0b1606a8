"""Data made just before midnight and read just after: each page shows the clinic's day.

The clock is held at 23:59:58 UTC while the data is made, then moved past midnight before
the pages are read, as happens to a nurse charting at the turn of the day (and to any test
run that straddles midnight)."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.treatments.models import Task
from tests import factories

HX = {"HX-Request": "true"}
BEFORE_MIDNIGHT = datetime(2026, 12, 2, 23, 59, 58, tzinfo=UTC)


def tasks_of(order) -> list[Task]:
    return list(db.session.scalars(select(Task).where(Task.order_id == order.id)
                                   .order_by(Task.due_at)))


@pytest.fixture
def before_midnight(frozen_clock):
    """The clock at 23:59:58 UTC on 2 December 2026; `.advance(seconds=5)` crosses midnight."""
    frozen_clock.set(BEFORE_MIDNIGHT)
    return frozen_clock


def test_a_sheet_read_after_midnight_shows_the_new_day_and_yesterday_on_asking(
        app, client, login, before_midnight):
    clinic = factories.clinic_make()
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    first, second = tasks_of(order)[:2]
    assert first.due_at == BEFORE_MIDNIGHT  # made and due on the 2nd
    login(clinic.user(1))
    before_midnight.advance(seconds=5)

    today = client.get(f"/patients/{patient.uid}/sheet").get_data(as_text=True)
    assert "Thursday 03 December 2026" in today
    assert second.uid in today and first.uid not in today
    yesterday = client.get(f"/patients/{patient.uid}/sheet?day=2026-12-02").get_data(True)
    assert "Wednesday 02 December 2026" in yesterday
    assert first.uid in yesterday and second.uid not in yesterday


def test_midnight_in_utc_is_not_the_clinics_midnight(app, client, login, before_midnight):
    """In New York 23:59:58 UTC is 18:59:58: crossing midnight UTC keeps the clinic's day."""
    clinic = factories.clinic_make(timezone="America/New_York")
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    login(clinic.user(1))
    before_midnight.advance(seconds=5)
    page = client.get(f"/patients/{patient.uid}/sheet").get_data(as_text=True)
    assert "Wednesday 02 December 2026" in page
    assert tasks_of(order)[0].uid in page


def test_a_task_due_before_midnight_done_after_it_answers_with_the_tasks_day(
        app, client, login, before_midnight):
    clinic = factories.clinic_make()
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, kind="observation", name="Temperature",
                                 dose=None, units=None, route=None)
    task = tasks_of(order)[0]
    login(clinic.user(2))
    before_midnight.advance(seconds=5)
    response = client.post(f"/tasks/{task.uid}/complete", data={"value": "38.6"}, headers=HX)
    grid = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#sheet-grid"
    # The grid the nurse was on (the task's day), with the value just recorded in it.
    assert task.uid in grid and "38.6" in grid
    db.session.expire_all()
    assert db.session.get(Task, task.id).done_at == datetime(2026, 12, 3, 0, 0, 3, tzinfo=UTC)


def test_a_date_of_birth_is_checked_against_the_clinics_day(app, before_midnight):
    """At 23:59:58 UTC it is already the 3rd in Auckland: born "today" is the 3rd there,
    and the 4th is still the future."""
    from kiosk.core.errors import DomainError

    clinic = factories.clinic_make(timezone="Pacific/Auckland")
    born_today = factories.patient_make(clinic, "Pip", date_of_birth="2026-12-03")
    assert born_today.date_of_birth.isoformat() == "2026-12-03"
    before = db.session.scalar(select(func.count()).select_from(Patient))
    with pytest.raises(DomainError, match="Date of birth cannot be in the future."):
        factories.patient_make(clinic, "Tomorrow", date_of_birth="2026-12-04")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Patient)) == before
