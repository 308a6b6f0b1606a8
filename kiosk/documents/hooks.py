"""What documents registers at start-up with the layers below it: its jobs on the queue.

A document queued (or made ready, its deliveries then due) queues "documents.work" after
the commit; the job works passes until one does nothing. Retries and back-off stay with
the rows (next_try_at): when one falls due within the sweep's minute, the job asks to run
again then; "documents.sweep", every minute, catches the rest (a lost enqueue, a worker
that died holding a lease).
"""

import threading
from datetime import datetime, timedelta

from flask import current_app

from ..core import clock
from ..core.events import event_subscribe
from ..core.jobs import job_enqueue, job_periodic, job_register
from .worker import documents_next_try, documents_work

WORK = "documents.work"
SWEEP_MINUTES = 1

# Inside a documents job, its own commits ("document.ready") need no new job: the job's
# next pass sends the deliveries they made due.
_working = threading.local()
_follow_up_lock = threading.Lock()


def documents_work_all() -> dict:
    """The job: work passes until one does nothing, then ask to run again when the next
    row falls due before the next sweep; the totals of what was done."""
    totals = {"rendered": 0, "failed": 0, "waiting": 0, "delivered": 0}
    _working.active = True
    try:
        while True:
            done = documents_work()
            for key, value in done.items():
                totals[key] += value
            if not any(done.values()):
                break
        _follow_up_ask(documents_next_try(), clock.utcnow())
    finally:
        _working.active = False
    return totals


def _follow_up_ask(due: datetime | None, now: datetime) -> None:
    """Queue "documents.work" for `due` if it comes before the next sweep and this process
    has not asked for a run by then already."""
    if due is None or due - now >= timedelta(minutes=SWEEP_MINUTES):
        return
    due = max(due, now + timedelta(seconds=1))
    # The follow-up this application last asked for: a row due by then needs no other one.
    follow_up = current_app.extensions.setdefault("kiosk.documents.follow_up", {})
    with _follow_up_lock:
        asked = follow_up.get("at")
        if asked is not None and now < asked <= due:
            return
        follow_up["at"] = due
    job_enqueue(WORK, delay_s=(due - now).total_seconds())


def _queue_work(_event) -> None:
    """After a commit that queued a document or made one ready: work the queue soon."""
    if not getattr(_working, "active", False):
        job_enqueue(WORK)


def install(app) -> None:
    """Register the documents jobs and queue the work after each commit that needs it."""
    job_register(WORK, documents_work_all)
    job_periodic("documents.sweep", documents_work_all, every_minutes=SWEEP_MINUTES)
    event_subscribe("document.queued", _queue_work)
    event_subscribe("document.ready", _queue_work)
