"""Flows' background work on the one job queue.

The FlowEvent and FlowStep rows say what must happen; jobs are the nudge. "flows.evaluate"
is queued after each commit that wrote events (a sync batch of a thousand admissions
queues one), evaluates them and carries out the steps due at once; "flows.sweep" runs every
minute: it notes overdue tasks and schedules, and picks up what a lost nudge, a back-off or
a crashed worker left waiting (a claim's lease runs out and the rows are free again).
"""

from ..core.events import event_prepare_batch, event_subscribe
from ..core.jobs import job_enqueue, job_periodic, job_register
from ..extensions import db
from .capture import events_capture, overdue_capture, schedule_capture
from .engine import flow_events_evaluate, flow_steps_run_due

EVALUATE_JOB = "flows.evaluate"
STEPS_JOB = "flows.steps"
SWEEP_JOB = "flows.sweep"


def flows_work() -> dict:
    """Evaluate the waiting events, then carry out the due steps; what was done."""
    evaluated = flow_events_evaluate()
    counts = flow_steps_run_due()
    return {"events": evaluated, **counts}


def flows_sweep() -> dict:
    """Note overdue tasks and schedules as events, then do all the waiting work."""
    overdue_capture()
    schedule_capture()
    db.session.commit()
    return flows_work()


def _capture(session, events):
    """Before a commit: write the events flows wait for; after it: queue their evaluation."""
    if events_capture(session, events):
        return lambda: job_enqueue(EVALUATE_JOB)
    return None


def install_jobs() -> None:
    """Register the jobs, the sweep, and the capture of events before each commit."""
    job_register(EVALUATE_JOB, flows_work, retries=3, retry_delay_s=10)
    job_register(STEPS_JOB, flow_steps_run_due, retries=3, retry_delay_s=10)
    job_periodic(SWEEP_JOB, flows_sweep, every_minutes=1)
    event_prepare_batch(_capture)
    event_subscribe("flows.step_retry", lambda evt: job_enqueue(STEPS_JOB))
