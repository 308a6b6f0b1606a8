"""Hourly upkeep: generate tasks ahead and keep the database's query planner informed."""

import logging
import time

from sqlalchemy import text

from ..extensions import db

log = logging.getLogger(__name__)
INTERVAL_S = 3600


def database_analyze() -> None:
    """Refresh SQLite's statistics so it picks the right index (PostgreSQL does its own)."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def upkeep_run() -> dict:
    """Extend every active order to two days ahead and refresh statistics; say what was done."""
    from ..treatments.services import tasks_extend_all

    created = tasks_extend_all()
    db.session.commit()
    database_analyze()
    return {"tasks_created": created}


def upkeep_loop(app, interval_s: int = INTERVAL_S) -> None:
    """Run upkeep now and then every hour for as long as the server runs."""
    while True:
        with app.app_context():
            try:
                done = upkeep_run()
                if done["tasks_created"]:
                    log.info("upkeep generated %d tasks ahead", done["tasks_created"])
            except Exception:  # the loop must outlive a bad hour (database restarting …)
                db.session.rollback()
                log.exception("upkeep failed; retrying in %d s", interval_s)
            finally:
                db.session.remove()
        time.sleep(interval_s)
