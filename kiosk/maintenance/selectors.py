"""Reads of maintenance windows and outages for the pages, the banner and the status page."""

from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from .models import MaintenanceWindow, Outage


def window_current(*, now: datetime | None = None) -> MaintenanceWindow | None:
    """The window under way, if any."""
    return db.session.scalars(select(MaintenanceWindow)
                              .where(MaintenanceWindow.state == "under_way")
                              .order_by(MaintenanceWindow.starts_at).limit(1)).first()


def windows_upcoming(*, now: datetime | None = None, limit: int = 10) -> list[MaintenanceWindow]:
    """Scheduled windows not yet started, soonest first."""
    return list(db.session.scalars(select(MaintenanceWindow)
                                   .where(MaintenanceWindow.state == "scheduled")
                                   .order_by(MaintenanceWindow.starts_at).limit(limit)))


def windows_recent(*, limit: int = 10) -> list[MaintenanceWindow]:
    """Windows that ended or were cancelled, latest first."""
    return list(db.session.scalars(select(MaintenanceWindow)
                                   .where(MaintenanceWindow.state.in_(("ended", "cancelled")))
                                   .order_by(MaintenanceWindow.starts_at.desc()).limit(limit)))


def outages_recent(*, limit: int = 20) -> list[Outage]:
    """Outages, latest first."""
    return list(db.session.scalars(select(Outage).order_by(Outage.started_at.desc())
                                   .limit(limit)))
