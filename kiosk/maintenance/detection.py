"""Outages found by themselves: a tablet whose batch brings work it performed well before
the work arrived could not reach the server meanwhile, so an outage is recorded from the
oldest such work to its arrival, or the outage it overlaps (a window's, or one found the
same way) is extended instead.

Detection never stands in sync's way. Just before a sync commits, on that transaction's own
connection, it asks when this request's ops were performed (one query over the device's
latest seqs); only when that reveals offline work does it write, after the commit, in a
session of its own. Whatever fails is logged, never raised.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from flask import current_app
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from ..core import clock
from ..core.events import DomainEvent, event_record
from ..devices.models import Device, SyncOp
from ..extensions import db
from ..sync.envelope import MAX_OPS
from .models import Outage

log = logging.getLogger(__name__)

DEFAULT_AFTER_S = 300
# Two tablets coming back together find the same outage at once: one writes at a time
# (in this process; on PostgreSQL a transaction lock keeps other processes in line too),
# so the second extends what the first recorded instead of adding another.
_write_lock = threading.Lock()
ADVISORY_LOCK_KEY = 0x6B696F736B  # "kiosk": outage detection's PostgreSQL lock


@dataclass(frozen=True)
class OfflineWork:
    """What one sync request revealed: the oldest work it carried and when it arrived."""

    device_id: int
    performed_at: datetime
    arrived_at: datetime


def detect_after() -> timedelta:
    """How long before its arrival work must have been performed to reveal an outage."""
    seconds = current_app.config.get("KIOSK_OUTAGE_DETECT_AFTER_S") or DEFAULT_AFTER_S
    return timedelta(seconds=int(seconds))


def offline_work(session: Session, device_id: int, *, after: timedelta) -> OfflineWork | None:
    """The offline work the device's latest request carried, or None when all of it was
    performed less than `after` before it arrived. One query: the request's ops share its
    arrival time and lie among the device's last MAX_OPS seqs (the unique index's range)."""
    device = session.get(Device, device_id)  # the sync's own row: no query
    if device is None or device.last_seen_at is None:
        return None
    arrived = device.last_seen_at
    oldest = session.scalar(select(func.min(SyncOp.corrected_at)).where(
        SyncOp.device_id == device_id, SyncOp.seq > device.last_seq - MAX_OPS,
        SyncOp.received_at == arrived, SyncOp.original_id.is_(None)))
    if oldest is None:
        # A heartbeat alone never reveals an outage: a tablet that keeps reporting old work
        # it cannot deliver would otherwise push the outage's end on every minute.
        return None
    reported = device.outbox_oldest_at
    if reported is not None and (device.outbox_pending or 0) > 0:
        # The tablet's own report of its oldest waiting op, on its clock: corrected as its
        # ops are, by the request's skew.
        reported = min(reported + timedelta(milliseconds=device.skew_ms or 0), arrived)
        oldest = min(oldest, reported)
    oldest = clock.as_utc(oldest)
    if clock.as_utc(arrived) - oldest < after:
        return None
    return OfflineWork(device_id, oldest, clock.as_utc(arrived))


def detect_prepare(session: Session, events: list[DomainEvent]):
    """Before a sync commits: the offline work its requests carried; after the commit, the
    outage is recorded (see outages_record). Nothing at all for other commits."""
    devices = sorted({evt.data.get("device") for evt in events if evt.name == "device.synced"}
                     - {None})
    if not devices:
        return None
    after = detect_after()
    found = [work for device_id in devices
             if (work := offline_work(session, device_id, after=after)) is not None]
    return partial(outages_record, found) if found else None


def outages_record(found: list[OfflineWork]) -> None:
    """After the sync's commit: record or extend the outage each find reveals, in a session
    of its own (the sync's has finished). Errors are logged: the sync has succeeded."""
    try:
        with _write_lock, Session(db.engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                {"key": ADVISORY_LOCK_KEY})
            for work in found:
                outage_detect(session=session, started_at=work.performed_at,
                              ended_at=work.arrived_at)
            session.commit()
    except Exception:  # detection must never be the reason a sync looks failed
        log.exception("outage detection failed for %d devices", len(found))


def outage_detect(*, session: Session, started_at: datetime, ended_at: datetime) -> Outage:
    """Record that the server was out of reach from `started_at` to `ended_at`: extend the
    outage this overlaps (a window's first, else the earliest; detected ones it now joins
    are merged into it), or add a detected one. An extended outage asks for review again."""
    overlapping = list(session.scalars(select(Outage).where(
        Outage.started_at <= ended_at,
        or_(Outage.ended_at.is_(None), Outage.ended_at >= started_at))
        .order_by(Outage.window_id.is_(None), Outage.started_at, Outage.id)))
    if not overlapping:
        outage = Outage(cause="detected", started_at=started_at, ended_at=ended_at,
                        detected_at=clock.utcnow())
        session.add(outage)
        session.flush()
        event_record(session, "outage.changed", outage=outage.uid)
        return outage
    outage, others = overlapping[0], overlapping[1:]
    before = (clock.as_utc(outage.started_at),
              clock.as_utc(outage.ended_at) if outage.ended_at else None)
    merged = False
    outage.started_at = min(clock.as_utc(outage.started_at), started_at)
    if outage.ended_at is not None:  # a window under way ends with the window
        outage.ended_at = max(clock.as_utc(outage.ended_at), ended_at)
    for other in others:
        if other.cause == "detected" and other.window_id is None:
            outage.started_at = min(outage.started_at, clock.as_utc(other.started_at))
            if outage.ended_at is not None and other.ended_at is not None:
                outage.ended_at = max(outage.ended_at, clock.as_utc(other.ended_at))
            session.delete(other)
            merged = True
    if (outage.started_at, outage.ended_at) != before or merged:
        outage.reviewed_at, outage.reviewed_by_id = None, None
        event_record(session, "outage.changed", outage=outage.uid)
    return outage
