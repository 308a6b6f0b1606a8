"""Maintenance windows on the one job queue: a tick that starts and ends them on time.

A tick is queued for the moments a window's plan names (under way, start, expected end)
as soon as it is planned, and runs every minute as well, so a tick lost with a stopped
server is made up by the next one. Each change of state is claimed by a conditional
UPDATE, so two ticks at once (the minute's and a planned one) never switch anything twice.
"""

from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from ..core import clock
from ..core.events import event_subscribe
from ..core.jobs import job_enqueue, job_periodic, job_register
from ..extensions import db
from .models import MaintenanceWindow
from .services import prepare_lead, window_end, window_mark_start, window_start

TICK_JOB = "maintenance.tick"
SWEEP_JOB = "maintenance.sweep"
BOOTED = "kiosk_booted_at"


def _claim(window: MaintenanceWindow, was: str, becomes: str) -> bool:
    """Move the window from `was` to `becomes` unless another tick did first."""
    done = db.session.execute(update(MaintenanceWindow).where(
        MaintenanceWindow.id == window.id, MaintenanceWindow.state == was)
        .values(state=becomes).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        db.session.rollback()
        return False
    return True


def _booted_at() -> datetime | None:
    return current_app.extensions.get(BOOTED)


def maintenance_tick(now: datetime | None = None) -> dict:
    """Start the windows now due (a few minutes early: see services), mark their start,
    and end those past their expected end or over because this server started again after
    they began. What was done, as counts."""
    now = now or clock.utcnow()
    done = {"started": 0, "ended": 0}
    lead = prepare_lead()
    due = db.session.scalars(select(MaintenanceWindow.id).where(
        MaintenanceWindow.state == "scheduled",
        MaintenanceWindow.starts_at <= now + lead).order_by(MaintenanceWindow.starts_at)).all()
    for window_id in due:
        window = db.session.get(MaintenanceWindow, window_id)
        if _claim(window, "scheduled", "under_way"):
            db.session.refresh(window)
            window_start(window=window, now=now)
            db.session.commit()
            done["started"] += 1
    booted = _booted_at()
    for window_id in db.session.scalars(select(MaintenanceWindow.id).where(
            MaintenanceWindow.state == "under_way")).all():
        window = db.session.get(MaintenanceWindow, window_id)
        why = _why_over(window, now, booted)
        if why and _claim(window, "under_way", "ending"):
            db.session.refresh(window)
            window_end(window=window, why=why, now=now)
            db.session.commit()
            done["ended"] += 1
        elif now >= window.starts_at and "start_mark" not in (window.restore or {}):
            window_mark_start(window=window)
            db.session.commit()
    return done


def _why_over(window: MaintenanceWindow, now: datetime, booted: datetime | None) -> str | None:
    """Why an under-way window is over now, or None."""
    if now >= window.ends_at:
        return "its planned end"
    if booted is not None and booted >= window.starts_at:
        return "the server started again after the window began"
    return None


def _plan_ticks(event) -> None:
    """Queue ticks for the moments a newly planned window names."""
    window = db.session.scalars(select(MaintenanceWindow).where(
        MaintenanceWindow.uid == event.data["window"])).first()
    if window is None:
        return
    now = clock.utcnow()
    prepare = window.starts_at - prepare_lead()
    if prepare <= now:  # planned within the lead: under way now, not at the next minute
        job_enqueue(TICK_JOB)
    for moment in (prepare, window.starts_at, window.ends_at):
        delay = (moment - now).total_seconds()
        if delay > 0:
            job_enqueue(TICK_JOB, delay_s=delay + 0.5)


def install_jobs(app) -> None:
    """Register the tick (planned and every minute) and note when this process started."""
    app.extensions[BOOTED] = clock.utcnow()
    job_register(TICK_JOB, maintenance_tick, retries=3, retry_delay_s=5)
    job_periodic(SWEEP_JOB, maintenance_tick, every_minutes=1)
    event_subscribe("maintenance.scheduled", _plan_ticks)
