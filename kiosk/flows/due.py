"""When a flow's step is due: elapsed time or calendar days on the clinic's wall clock, and
what a weekend does to it. Aware UTC in and out; the clinic's zone decides days and weekends.

The definition is validated when it is saved, so a bad unit or weekend rule reaching here
is a programming error (ValueError), not something to tell staff.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..core.clock import moment_text

UNITS = ("minutes", "hours", "days", "weeks")
WEEKEND_RULES = ("keep", "friday", "monday")
REMIND_UNITS = ("minutes", "hours", "days")

SATURDAY = 5


def due_compute(*, anchor: datetime, amount: int, unit: str, weekend: str,
                tz: ZoneInfo) -> datetime:
    """`amount` `unit`s after `anchor`, moved off a local weekend by `weekend`, in UTC."""
    _check(anchor=anchor, amount=amount, unit=unit, units=UNITS, minimum=0)
    if weekend not in WEEKEND_RULES:
        raise ValueError(f"unknown weekend rule {weekend!r}")
    if unit in ("minutes", "hours"):
        # In UTC: arithmetic on an aware local datetime would add wall-clock time.
        due = anchor.astimezone(UTC) + timedelta(**{unit: amount})
        if not _on_weekend(due, tz, weekend):
            return due  # an instant, never re-read from the wall (the second 01:30 stays)
        wall = _wall(due, tz)
    else:
        days = amount * (7 if unit == "weeks" else 1)
        wall = _wall(anchor, tz) + timedelta(days=days)
    # The weekend is judged on the intended wall time, before a gap could move it.
    return _resolve(_off_weekend(wall, weekend), tz)


def remind_compute(*, due: datetime, amount: int, unit: str, tz: ZoneInfo) -> datetime:
    """When to remind about something due at `due`: `amount` `unit`s before it, in UTC
    (days keep the local wall time, as due dates do)."""
    _check(anchor=due, amount=amount, unit=unit, units=REMIND_UNITS, minimum=1)
    if unit == "days":
        return _resolve(_wall(due, tz) - timedelta(days=amount), tz)
    return due.astimezone(UTC) - timedelta(**{unit: amount})


def due_text(value: datetime, tz: ZoneInfo) -> str:
    """A UTC time as the clinic's plain 'Mon 7 Dec 09:00'."""
    return moment_text(value, tz)


def _check(*, anchor: datetime, amount: int, unit: str, units: tuple, minimum: int) -> None:
    if anchor.tzinfo is None or anchor.utcoffset() is None:
        raise ValueError("the anchor must be an aware datetime")
    if unit not in units:
        raise ValueError(f"unknown unit {unit!r}")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < minimum:
        raise ValueError(f"amount must be a whole number of at least {minimum}")


def _on_weekend(value: datetime, tz: ZoneInfo, weekend: str) -> bool:
    """Whether the weekend rule must move this instant (a local Saturday or Sunday)."""
    return weekend != "keep" and _wall(value, tz).weekday() >= SATURDAY


def _wall(value: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall-clock reading of an instant in the clinic's zone."""
    return value.astimezone(tz).replace(tzinfo=None)


def _resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a clinic wall time. fold=0 takes the first of an ambiguous hour
    (clocks going back) and, for a time that does not exist (clocks going forward), reads
    it with the offset before the change: the same instant as the wall time moved forward
    by the gap (02:30 on a spring-forward day becomes 03:30)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _off_weekend(wall: datetime, weekend: str) -> datetime:
    """A Saturday or Sunday wall time moved to the Friday before or the Monday after."""
    day = wall.weekday()
    if weekend == "keep" or day < SATURDAY:
        return wall
    if weekend == "friday":
        return wall - timedelta(days=day - 4)
    return wall + timedelta(days=7 - day)
