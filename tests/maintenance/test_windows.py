"""Maintenance windows: planning (and its refusals), the tick that starts and ends them,
what the start switches and the end puts back, and the banner every screen shows."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kiosk.billing.models import BillingConnector, ShiftMark
from kiosk.billing.services import connector_configure, connector_get
from kiosk.clinic.selectors import settings_get
from kiosk.core.errors import DomainError
from kiosk.core.jobs import CONSUMER_STARTED as BOOTED
from kiosk.extensions import db
from kiosk.maintenance.jobs import maintenance_tick
from kiosk.maintenance.models import MaintenanceWindow, Outage
from kiosk.maintenance.services import (
    ERR_END_BEFORE,
    window_cancel,
    window_end_now,
    window_schedule,
)
from tests import factories

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def manager_clinic(app, frozen_clock):
    """A clinic that does not allow direct creation, with a webhook connector."""
    clinic = factories.clinic_make(direct_creation=False)
    connector_configure(user=clinic.user(6), kind="webhook",
                        webhook_url="http://127.0.0.1:9/charges")
    db.session.commit()
    return clinic


def _form(start: datetime, end: datetime, message: str = "Server upgrade") -> dict:
    """Form values in the clinic's zone (UTC here)."""
    return {"starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": end.strftime("%Y-%m-%dT%H:%M"), "message": message}


def _plan(clinic, start, end, message="Server upgrade"):
    window = window_schedule(user=clinic.user(6), data=_form(start, end, message))
    db.session.commit()
    return window


def _windows() -> int:
    return db.session.scalar(select(func.count()).select_from(MaintenanceWindow))


def test_a_window_that_ends_before_it_starts_is_refused_and_nothing_is_stored(manager_clinic):
    with pytest.raises(DomainError) as err:
        window_schedule(user=manager_clinic.user(6),
                        data=_form(T0 + timedelta(hours=2), T0 + timedelta(hours=1)))
    db.session.rollback()
    assert err.value.field == "ends_at" and err.value.message == ERR_END_BEFORE
    assert _windows() == 0


def test_a_window_overlapping_another_is_refused_naming_the_other(manager_clinic):
    _plan(manager_clinic, T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    with pytest.raises(DomainError) as err:
        window_schedule(user=manager_clinic.user(6),
                        data=_form(T0 + timedelta(hours=2), T0 + timedelta(hours=4)))
    db.session.rollback()
    assert err.value.field == "starts_at" and "overlaps" in err.value.message
    assert "13:00" in err.value.message
    assert _windows() == 1
    # Touching ends are not an overlap.
    _plan(manager_clinic, T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    assert _windows() == 2


@pytest.mark.parametrize("data, field", [
    ({"starts_at": "", "ends_at": "2026-11-22T14:00"}, "starts_at"),
    ({"starts_at": "tomorrow", "ends_at": "2026-11-22T14:00"}, "starts_at"),
    ({"starts_at": "2026-11-22T13:00", "ends_at": "2026-11-26T14:00"}, "ends_at"),
    ({"starts_at": "2026-11-22T10:00", "ends_at": "2026-11-22T14:00"}, "starts_at"),
    ({"starts_at": "2026-11-22T13:00", "ends_at": "2026-11-22T14:00", "message": "x" * 501},
     "message"),
])
def test_bad_times_and_messages_are_refused_on_their_field(manager_clinic, data, field):
    with pytest.raises(DomainError) as err:
        window_schedule(user=manager_clinic.user(6), data=data)
    db.session.rollback()
    assert err.value.field == field
    assert _windows() == 0


def test_only_a_manager_plans_maintenance(manager_clinic):
    from kiosk.core.errors import Forbidden

    with pytest.raises(Forbidden):
        window_schedule(user=manager_clinic.user(5),
                        data=_form(T0 + timedelta(hours=1), T0 + timedelta(hours=2)))
    db.session.rollback()
    assert _windows() == 0


def test_the_window_switches_at_its_start_and_puts_everything_back_at_its_end(
        manager_clinic, frozen_clock, app):
    app.extensions[BOOTED] = T0  # this process started before the window
    window = _plan(manager_clinic, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert maintenance_tick() == {"started": 0, "ended": 0}
    assert window.state == "scheduled"

    frozen_clock.set(T0 + timedelta(minutes=56))  # within the 5 minutes before the start
    assert maintenance_tick()["started"] == 1
    db.session.refresh(window)
    assert window.state == "under_way"
    assert settings_get().allow_direct_patient_creation is True
    assert connector_get().paused is True
    assert db.session.scalar(select(func.count()).select_from(ShiftMark)) == 0
    outage = db.session.scalars(select(Outage)).one()
    assert outage.cause == "window" and outage.started_at == T0 + timedelta(minutes=56)

    frozen_clock.set(T0 + timedelta(hours=1, seconds=1))
    assert maintenance_tick() == {"started": 0, "ended": 0}
    marks = db.session.scalars(select(ShiftMark).order_by(ShiftMark.at)).all()
    assert [m.at for m in marks] == [window.starts_at]

    frozen_clock.set(T0 + timedelta(hours=2, minutes=1))
    assert maintenance_tick()["ended"] == 1
    db.session.refresh(window)
    assert window.state == "ended" and window.ended_at == T0 + timedelta(hours=2, minutes=1)
    assert settings_get().allow_direct_patient_creation is False
    assert connector_get().paused is False
    assert db.session.scalar(select(func.count()).select_from(ShiftMark)) == 2
    db.session.refresh(outage)
    assert outage.ended_at == window.ended_at
    assert maintenance_tick() == {"started": 0, "ended": 0}  # nothing twice


def test_what_was_already_on_stays_on_and_a_managers_pause_meanwhile_stays(
        app, frozen_clock):
    clinic = factories.clinic_make(direct_creation=True)
    connector_configure(user=clinic.user(6), kind="webhook",
                        webhook_url="http://127.0.0.1:9/charges")
    db.session.commit()
    app.extensions[BOOTED] = T0
    window = _plan(clinic, T0 + timedelta(minutes=3), T0 + timedelta(hours=1))
    maintenance_tick()
    db.session.refresh(window)
    assert window.restore.get("allow_direct_patient_creation") is None  # it was on
    from kiosk.billing.services import connector_pause

    connector_pause(user=clinic.user(6), paused=True, reason="The practice system is down")
    db.session.commit()
    frozen_clock.set(T0 + timedelta(hours=1))
    maintenance_tick()
    assert settings_get().allow_direct_patient_creation is True
    assert connector_get().paused is True
    assert connector_get().pause_reason == "The practice system is down"


def test_a_window_ends_when_the_server_starts_again_after_it_began(
        manager_clinic, frozen_clock, app):
    app.extensions[BOOTED] = T0
    window = _plan(manager_clinic, T0 + timedelta(minutes=4), T0 + timedelta(hours=2))
    maintenance_tick()
    frozen_clock.set(T0 + timedelta(minutes=20))
    app.extensions[BOOTED] = T0 + timedelta(minutes=19)  # stopped at the start, back now
    assert maintenance_tick()["ended"] == 1
    db.session.refresh(window)
    assert window.state == "ended"
    marks = db.session.scalars(select(ShiftMark).order_by(ShiftMark.at)).all()
    assert [m.at for m in marks] == [window.starts_at, T0 + timedelta(minutes=20)]


def test_a_window_missed_whole_while_the_server_was_down_still_switches_and_puts_back(
        manager_clinic, frozen_clock, app):
    app.extensions[BOOTED] = T0
    window = _plan(manager_clinic, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    frozen_clock.set(T0 + timedelta(hours=3))
    app.extensions[BOOTED] = T0 + timedelta(hours=3)
    assert maintenance_tick() == {"started": 1, "ended": 1}
    db.session.refresh(window)
    assert window.state == "ended"
    assert settings_get().allow_direct_patient_creation is False
    assert connector_get().paused is False


def test_cancel_and_end_now_only_in_their_states(manager_clinic, frozen_clock, app):
    app.extensions[BOOTED] = T0
    window = _plan(manager_clinic, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    with pytest.raises(DomainError) as err:
        window_end_now(user=manager_clinic.user(6), window=window)
    db.session.rollback()
    assert err.value.status == 409 and window.state == "scheduled"
    window_cancel(user=manager_clinic.user(6), window=window)
    db.session.commit()
    assert window.state == "cancelled"
    with pytest.raises(DomainError):
        window_cancel(user=manager_clinic.user(6), window=window)
    db.session.rollback()
    assert maintenance_tick() == {"started": 0, "ended": 0}
    assert db.session.scalar(select(func.count()).select_from(BillingConnector)) == 1


def test_a_windows_change_pokes_every_screen_with_no_data():
    from kiosk.core.events import DomainEvent
    from kiosk.live.pokes import pokes_for

    pokes = pokes_for([DomainEvent("maintenance.started", {"window": "w"})], connection=None)
    assert [(room, poke["topic"]) for room, poke in pokes] == [(None, "maintenance")]
    assert set(pokes[0][1]) == {"topic", "version"}


def test_planning_a_window_queues_its_ticks_so_it_is_under_way_without_the_minutes_sweep(
        manager_clinic, frozen_clock, app):
    from kiosk.core.jobs import jobs_run_pending

    app.extensions[BOOTED] = T0
    window = _plan(manager_clinic, T0 + timedelta(minutes=3), T0 + timedelta(hours=1))
    jobs_run_pending()
    db.session.expire_all()
    assert window.state == "under_way"
    assert settings_get().allow_direct_patient_creation is True


def test_back_to_back_windows_keep_the_switches_until_the_last_one_ends(
        manager_clinic, frozen_clock, app):
    app.extensions[BOOTED] = T0
    first = _plan(manager_clinic, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    second = _plan(manager_clinic, T0 + timedelta(hours=2), T0 + timedelta(hours=3),
                   "The rest of the upgrade")
    frozen_clock.set(T0 + timedelta(minutes=56))
    maintenance_tick()
    frozen_clock.set(T0 + timedelta(hours=1, minutes=56))
    assert maintenance_tick()["started"] == 1  # the second, while the first is under way
    frozen_clock.set(T0 + timedelta(hours=2))
    assert maintenance_tick()["ended"] == 1
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.state, second.state) == ("ended", "under_way")
    assert settings_get().allow_direct_patient_creation is True
    assert connector_get().paused is True
    frozen_clock.set(T0 + timedelta(hours=3))
    maintenance_tick()
    assert settings_get().allow_direct_patient_creation is False
    assert connector_get().paused is False


def test_a_planner_who_lost_the_managers_level_does_not_stop_the_window(
        manager_clinic, frozen_clock, app):
    from kiosk.staff.models import User

    app.extensions[BOOTED] = T0
    window = _plan(manager_clinic, T0 + timedelta(minutes=3), T0 + timedelta(hours=1))
    db.session.get(User, manager_clinic.user(6).id).level = 2
    db.session.commit()
    maintenance_tick()
    frozen_clock.set(T0 + timedelta(minutes=4))
    maintenance_tick()
    frozen_clock.set(T0 + timedelta(hours=1))
    assert maintenance_tick()["ended"] == 1
    db.session.refresh(window)
    assert window.restore["start_mark"] and window.restore["end_mark"]
    assert settings_get().allow_direct_patient_creation is False
    assert connector_get().paused is False


def test_a_one_off_run_or_a_worker_begun_after_the_window_did_not_end_it(
        manager_clinic, frozen_clock, app):
    app.extensions.pop(BOOTED, None)  # `kiosk jobs run-once`: no consumer
    window = _plan(manager_clinic, T0 + timedelta(minutes=1), T0 + timedelta(hours=1))
    frozen_clock.set(T0 + timedelta(minutes=10))
    maintenance_tick()
    db.session.refresh(window)
    assert window.state == "under_way"
    # A worker that began before the window was under way (it was down across the start)
    # and took it under way itself: the window goes on.
    app.extensions[BOOTED] = T0 + timedelta(minutes=9)
    maintenance_tick()
    db.session.refresh(window)
    assert window.state == "under_way"


def test_end_now_and_the_tick_at_once_end_the_window_once(manager_clinic, frozen_clock, app):
    from kiosk.maintenance.services import window_claim

    app.extensions[BOOTED] = T0
    window = _plan(manager_clinic, T0 + timedelta(minutes=3), T0 + timedelta(hours=1))
    maintenance_tick()
    assert window_claim(window, "under_way", "ending")  # the tick got there first
    with pytest.raises(DomainError) as err:
        window_end_now(user=manager_clinic.user(6), window=window)
    assert err.value.status == 409
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ShiftMark)) == 0
