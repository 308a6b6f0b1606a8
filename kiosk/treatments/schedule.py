"""When an order's tasks fall due: every N hours, set times of day, once, or PRN."""

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..core.clock import format_iso_z

# A new stay starts with two days of sheet; `kiosk tasks extend` rolls it forward.
HORIZON = timedelta(hours=48)


def task_uid(order_uid: str, due_at: datetime) -> str:
    """The deterministic uid of an order's task due at `due_at` (SYNC.md)."""
    return str(uuid.uuid5(uuid.UUID(order_uid), format_iso_z(due_at)))


def due_times(*, start: datetime, end: datetime | None, every_hours: int | None,
              times: list[str], prn: bool, after: datetime | None, until: datetime,
              tz: ZoneInfo) -> list[datetime]:
    """Due times in [after, until) (from the start when `after` is None), within the order."""
    if prn:
        return []
    limit = min(until, end + timedelta(seconds=1)) if end else until
    if every_hours:
        dues = _every(start, every_hours, limit)
    elif times:
        dues = _set_times(start, times, limit, tz)
    else:
        dues = [start] if start < limit else []
    return [d for d in dues if after is None or d >= after]


def _every(start: datetime, hours: int, limit: datetime) -> list[datetime]:
    step = timedelta(hours=hours)
    out, due = [], start
    while due < limit:
        out.append(due)
        due += step
    return out


def _set_times(start: datetime, times: list[str], limit: datetime, tz: ZoneInfo) -> list[datetime]:
    out = []
    day = start.astimezone(tz).date()
    last_day = limit.astimezone(tz).date()
    parsed = [time(int(t[:2]), int(t[3:])) for t in times]
    while day <= last_day:
        for at in parsed:
            due = datetime.combine(day, at, tzinfo=tz).astimezone(start.tzinfo)
            if start <= due < limit:
                out.append(due)
        day += timedelta(days=1)
    return out
