"""Hourly upkeep: the jobs features register (treatments: tasks ahead), then fresh
statistics for the database's query planner; a periodic job of the queue (core.jobs)."""

import logging
from collections.abc import Callable

from sqlalchemy import text

from ..extensions import db
from .jobs import job_periodic

log = logging.getLogger(__name__)
INTERVAL_MINUTES = 60

# Name → job, registered at start-up by the features that own the work; a job returns a
# count that the run reports under its name ("tasks_created").
_jobs: dict[str, Callable[[], int]] = {}


def upkeep_job_register(name: str, job: Callable[[], int]) -> None:
    """Run `job` at every upkeep, its count reported as `name`."""
    _jobs[name] = job


def database_analyze() -> None:
    """Refresh SQLite's statistics so it picks the right index (PostgreSQL does its own)."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def upkeep_run() -> dict:
    """Run every registered job (committing each), refresh statistics; say what was done."""
    done = {}
    for name, job in sorted(_jobs.items()):
        done[name] = job()
        db.session.commit()
    database_analyze()
    return done


def upkeep_job() -> dict:
    """Upkeep as the hourly job: what it did is logged when it did anything."""
    done = upkeep_run()
    if any(done.values()):
        log.info("upkeep: %s", done)
    return done


def install() -> None:
    """Make upkeep the hourly job of the queue (and run at each consumer's start)."""
    job_periodic("upkeep", upkeep_job, every_minutes=INTERVAL_MINUTES)
