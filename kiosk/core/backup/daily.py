"""The daily backup: with KIOSK_BACKUP_DIR set, the job queue makes a backup set there
once a day and keeps the newest KIOSK_BACKUP_KEEP (default 7)."""

import logging
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app

from .. import clock
from ..errors import DomainError
from ..jobs import job_periodic
from .sets import SET_PREFIX, STAMP, backup_make, backup_sets, backups_prune, kept_files

log = logging.getLogger(__name__)
DEFAULT_KEEP = 7
# Looked at hourly, made when the newest set is older than this: a day's rhythm that
# catches up after the server was off, and restarts of the server add no extra sets.
CHECK_MINUTES = 60
DUE_AFTER = timedelta(hours=23)

_version = {"app": "unknown"}


def _made_at(path: Path) -> datetime | None:
    stamp = path.name[len(SET_PREFIX):len(SET_PREFIX) + 16]
    try:
        return clock.as_utc(datetime.strptime(stamp, STAMP))
    except ValueError:
        return None


def backup_due(folder: Path) -> bool:
    """Whether the newest set in `folder` is a day old (or there is none)."""
    made = [at for at in map(_made_at, backup_sets(folder)) if at is not None]
    return not made or clock.utcnow() - max(made) >= DUE_AFTER


def backup_daily() -> dict:
    """The job: a new set in KIOSK_BACKUP_DIR when one is due, then the oldest beyond
    KIOSK_BACKUP_KEEP removed; what it did (nothing without KIOSK_BACKUP_DIR)."""
    config = current_app.config
    if not config.get("KIOSK_BACKUP_DIR"):
        return {}
    folder = Path(config["KIOSK_BACKUP_DIR"])
    if not backup_due(folder):
        return {}
    files = kept_files(current_app.instance_path, config.get("SECRET_KEY"))
    try:
        path, manifest = backup_make(url=config["SQLALCHEMY_DATABASE_URI"], folder=folder,
                                     files=files, app_version=_version["app"])
    except DomainError as exc:
        log.error("daily backup failed: %s", exc.message)  # says what, never a password
        return {"failed": exc.code}
    gone = backups_prune(folder, int(config.get("KIOSK_BACKUP_KEEP") or DEFAULT_KEEP))
    log.info("daily backup written to %s (%d rows); %d older removed", path,
             sum(manifest["tables"].values()), len(gone))
    return {"backup": str(path), "removed": len(gone)}


def install(app_version: str) -> None:
    """Make the daily backup a job of the queue (it does nothing unless KIOSK_BACKUP_DIR is
    set); `app_version` goes in its manifests."""
    _version["app"] = app_version
    job_periodic("backup", backup_daily, every_minutes=CHECK_MINUTES)
