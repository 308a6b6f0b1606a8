"""Maintenance windows on the one job queue: a tick that starts and ends them on time.

A tick is queued for the moments a window's plan names (under way, start, expected end)
as soon as it is planned, and runs every minute as well, so a tick lost with a stopped
server is made up by the next one. Each change of state is claimed by a conditional
UPDATE (services.window_claim), and ticks of one process take turns, so two ticks at once
(the minute's and a planned one) never switch anything twice.
"""

import threading
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..core import clock
from ..core.clock import as_utc
from ..core.events import event_subscribe
from ..core.jobs import CONSUMER_STARTED, job_enqueue, job_periodic, job_register
from ..extensions import db
from .models import MaintenanceWindow
from .services import prepare_lead, window_claim, window_end, window_mark_start, window_start

TICK_JOB = "maintenance.tick"
SWEEP_JOB = "maintenance.sweep"
_turns = threading.Lock()


def _consumer_started() -> datetime | None:
    """When this process began running the queue's jobs (None for a one-off run)."""
    return current_app.extensions.get(CONSUMER_STARTED)


def _locked(window_id: int) -> MaintenanceWindow:
    """The window, its row locked for this transaction on PostgreSQL (a worker of another
    process waits; SQLite has one writer at a time anyway)."""
    return db.session.scalars(select(MaintenanceWindow).where(MaintenanceWindow.id == window_id)
                              .with_for_update()).one()


def maintenance_tick(now: datetime | None = None) -> dict:
    """Start the windows now due (a few minutes early: see services), mark their start,
    and end those past their expected end or over because this server started again after
    they began. What was done, as counts."""
    with _turns:
        return _tick(now or clock.utcnow())


def _tick(now: datetime) -> dict:
    done = {"started": 0, "ended": 0}
    due = db.session.scalars(select(MaintenanceWindow.id).where(
        MaintenanceWindow.state == "scheduled",
        MaintenanceWindow.starts_at <= now + prepare_lead())
        .order_by(MaintenanceWindow.starts_at)).all()
    for window_id in due:
        window = db.session.get(MaintenanceWindow, window_id)
        if window_claim(window, "scheduled", "under_way"):
            db.session.refresh(window)
            window_start(window=window, now=now)
            done["started"] += 1
        db.session.commit()
    started = _consumer_started()
    for window_id in db.session.scalars(select(MaintenanceWindow.id).where(
            MaintenanceWindow.state == "under_way").order_by(MaintenanceWindow.starts_at)).all():
        window = _locked(window_id)
        why = _why_over(window, now, started)
        if why and window_claim(window, "under_way", "ending"):
            db.session.refresh(window)
            window_end(window=window, why=why, now=now)
            done["ended"] += 1
        elif window.state == "under_way" and now >= window.starts_at:
            window_mark_start(window=window)
        db.session.commit()
    return done


def _why_over(window: MaintenanceWindow, now: datetime, started: datetime | None) -> str | None:
    """Why an under-way window is over now, or None. A process that began running jobs
    after the window started and was under way has been restarted during it: the server
    is back (a window under way only after this process began is not)."""
    if now >= window.ends_at:
        return "its planned end"
    if started is not None and started >= window.starts_at and window.started_at is not None \
            and started > window.started_at:
        return "the server started again after the window began"
    return None


def _plan_ticks(event) -> None:
    """Queue ticks for the moments a newly planned window names (they came with the event:
    after the commit the session that wrote it cannot be read)."""
    now = clock.utcnow()
    prepare, *later = (as_utc(datetime.fromisoformat(m)) for m in event.data["moments"])
    if prepare <= now:  # planned within the lead: under way now, not at the next minute
        job_enqueue(TICK_JOB)
    for moment in (prepare, *later):
        delay = (moment - now).total_seconds()
        if delay > 0:
            job_enqueue(TICK_JOB, delay_s=delay + 0.5)


def install_jobs(app) -> None:
    """Register the tick (planned and every minute)."""
    job_register(TICK_JOB, maintenance_tick, retries=3, retry_delay_s=5)
    job_periodic(SWEEP_JOB, maintenance_tick, every_minutes=1)
    event_subscribe("maintenance.scheduled", _plan_ticks)
