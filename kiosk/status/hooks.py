"""What the status feature registers at start-up: the job that sends notices and its
sweep, the workers' heartbeat, and the writing of notices in the transactions that
record maintenance and incident events."""

from ..core.events import event_prepare_batch
from ..core.jobs import job_periodic, job_register
from .health import heartbeat_stamp
from .notices import SEND_JOB, SWEEP_JOB, deliveries_send_all, notices_prepare

HEARTBEAT_JOB = "status.heartbeat"


def install(app) -> None:
    """Send notices on the job queue (a sweep every minute re-sends what was left
    pending), stamp the workers' heartbeat every minute, and turn maintenance and incident
    events into notices before their commit."""
    job_register(SEND_JOB, deliveries_send_all, retries=3, retry_delay_s=30)
    job_periodic(SWEEP_JOB, deliveries_send_all, every_minutes=1)
    job_periodic(HEARTBEAT_JOB, heartbeat_stamp, every_minutes=1)
    event_prepare_batch(notices_prepare)
