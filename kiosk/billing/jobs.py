"""Billing's background work on the one job queue: sending charges to the practice system.

The charge rows say what is to send; a job is only the nudge. "billing.send" is queued
after each commit that captured a charge, changed the connector (a resume, a new address),
linked a patient to the practice system (its held charges go) or asked to send failing charges now,
and a sweep every minute picks up retries whose back-off is over.
"""

from ..core.events import event_subscribe_batch
from ..core.jobs import job_enqueue, job_periodic, job_register
from .sending import charges_send_due

SEND_JOB = "billing.send"
SWEEP_JOB = "billing.send_sweep"
# After these commits there may be something to send.
SEND_EVENTS = ("charge.captured", "billing.connector_changed", "patient.allocated",
               "billing.send_requested")


def charges_send_all() -> dict:
    """Send until nothing is due (a failure waits for its back-off); the totals."""
    totals = {"sent": 0, "failed": 0, "taken": 0}
    while True:
        counts = charges_send_due()
        for name, value in counts.items():
            totals[name] += value
        # A pass that did something may have left more due (its batch limit, charges
        # captured meanwhile); a failure is not due again before its back-off, so it ends.
        if counts["sent"] + counts["failed"] == 0:
            return totals


def _enqueue_send(events) -> None:
    """One send job per commit that may have given it work (a sync batch's hundred charges
    queue one job, not a hundred)."""
    if any(evt.name in SEND_EVENTS for evt in events):
        job_enqueue(SEND_JOB)


def install_jobs() -> None:
    """Register the send job and its sweep, and queue a send after the commits that may
    have given it work."""
    job_register(SEND_JOB, charges_send_all, retries=3, retry_delay_s=30)
    job_periodic(SWEEP_JOB, charges_send_all, every_minutes=1)
    event_subscribe_batch(_enqueue_send)
