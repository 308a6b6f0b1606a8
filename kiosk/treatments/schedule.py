"""When an order's tasks fall due: every N hours, set times of day, once, or PRN."""

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..core.clock import format_iso_z
from ..core.errors import DomainError

# A new stay starts with two days of sheet; `kiosk tasks extend` rolls it forward.
HORIZON = timedelta(hours=48)

# How far an order's schedule may reach (order_window_check). An order is written for a
# patient in the hospital now: started up to a week back (written up after a busy night, or
# made on a tablet that was offline over a long weekend), planned at most a month ahead,
# and running at most 90 days before someone renews it. Every task of the window exists
# at most once, so one order can never make tens of thousands of tasks at once.
BACKDATE_LIMIT = timedelta(days=7)
AHEAD_LIMIT = timedelta(days=30)
LONGEST_ORDER = timedelta(days=90)
# How far ahead of now a task is made on demand (a sheet shown ahead, a tablet's
# completion of a task the server had not made yet).
SHOWN_AHEAD = timedelta(days=14)
ERR_START_EARLY = "The start can be at most 7 days ago (write a new order for what happens now)."
ERR_START_LATE = "The start can be at most 30 days ahead."
ERR_END_LATE = "The end can be at most 90 days after the start; renew the order then."


def order_window_check(start: datetime, end: datetime | None, *, now: datetime) -> None:
    """The one rule for when an order may start and end; every caller (sheet form, sync op,
    import) goes through order_fields_clean, which calls this. DomainError names the field."""
    if start < now - BACKDATE_LIMIT:
        raise DomainError("out_of_range", ERR_START_EARLY, field="start")
    if start > now + AHEAD_LIMIT:
        raise DomainError("out_of_range", ERR_START_LATE, field="start")
    if end is not None and end > start + LONGEST_ORDER:
        raise DomainError("out_of_range", ERR_END_LATE, field="end")


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


def is_due_time(*, start: datetime, end: datetime | None, every_hours: int | None,
                times: list[str], prn: bool, due: datetime, tz: ZoneInfo) -> bool:
    """Whether `due` is one of the order's due times (what a tablet's `dueTimes` gives),
    worked out directly: however old the order, no walk over its whole schedule."""
    if prn or due < start or (end is not None and due > end):
        return False
    if every_hours:
        return (due - start) % timedelta(hours=every_hours) == timedelta(0)
    if times:
        local_day = due.astimezone(tz).date()
        return any(datetime.combine(local_day, time(int(t[:2]), int(t[3:])), tzinfo=tz)
                   .astimezone(due.tzinfo) == due for t in times)
    return due == start
