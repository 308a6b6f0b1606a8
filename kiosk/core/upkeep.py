"""Hourly upkeep: the jobs features register (treatments: tasks ahead), then fresh
statistics for the database's query planner."""

import logging
import time
from collections.abc import Callable

from sqlalchemy import text

from ..extensions import db

log = logging.getLogger(__name__)
INTERVAL_S = 3600

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


def upkeep_loop(app, interval_s: int = INTERVAL_S) -> None:
    """Run upkeep now and then every hour for as long as the server runs."""
    while True:
        with app.app_context():
            try:
                done = upkeep_run()
                if any(done.values()):
                    log.info("upkeep: %s", done)
            except Exception:  # the loop must outlive a bad hour (database restarting …)
                db.session.rollback()
                log.exception("upkeep failed; retrying in %d s", interval_s)
            finally:
                db.session.remove()
        time.sleep(interval_s)
