"""Messaging's background work on the one job queue: sending messages to clients.

The message rows say what is to send; a job is only the nudge. "messaging.send" is queued
after each commit that recorded a message (or asked to send one again), and a sweep every
minute picks up held messages whose time came, retries whose back-off is over, and
messages a dead sender left behind once their lease is over.
"""

from ..core.events import event_subscribe_batch
from ..core.jobs import job_enqueue, job_periodic, job_register
from .sending import messages_send_all

SEND_JOB = "messaging.send"
SWEEP_JOB = "messaging.sweep"


def _enqueue_send(events) -> None:
    """One send job per commit that recorded messages (a flow's hundred: one job)."""
    if any(evt.name == "client_message.queued" for evt in events):
        job_enqueue(SEND_JOB)


def install_jobs() -> None:
    """Register the send job and its sweep, and queue a send after the commits that may
    have given it work."""
    job_register(SEND_JOB, messages_send_all, retries=3, retry_delay_s=30)
    job_periodic(SWEEP_JOB, messages_send_all, every_minutes=1)
    event_subscribe_batch(_enqueue_send)
