"""What flows register at start-up: the capture of events and its jobs, and the facts
that end runs (a discharge, a task that completes its whole flow)."""

from ..core.events import fact_subscribe
from .engine import run_complete_by_task, runs_end_at_discharge
from .jobs import install_jobs


def install(app) -> None:
    """React to the clinic's events on the job queue; end runs with their facts."""
    fact_subscribe("patient.discharged", runs_end_at_discharge)
    fact_subscribe("staff_task.completed", run_complete_by_task)
    install_jobs()
