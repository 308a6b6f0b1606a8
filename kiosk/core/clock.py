"""Time is UTC inside; the clinic's time zone only on screens and documents."""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import DomainError

ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


def _wall() -> datetime:
    return datetime.now(UTC)


# The one source of "now". Every reader goes through utcnow(), which looks the source
# up at call time, so a test (or KIOSK_CLOCK_START) can move the clock for everyone.
_source: Callable[[], datetime] = _wall


def utcnow() -> datetime:
    """The current time, aware, in UTC, to the second."""
    return as_utc(_source()).replace(microsecond=0)


def utcnow_exact() -> datetime:
    """The current time, aware, in UTC, with its microseconds (for stamps finer than a second)."""
    return as_utc(_source())


def set_source(source: Callable[[], datetime] | None) -> None:
    """Make `source` the clock (None: the wall clock again)."""
    global _source
    _source = source or _wall


def running_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start` now and runs on at the wall clock's pace."""
    offset = as_utc(start) - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


@contextmanager
def frozen(at: datetime) -> Iterator["Frozen"]:
    """Hold the clock at `at` inside the block; `.advance(...)`/`.set(...)` move it."""
    held = Frozen(as_utc(at))
    previous = _source
    set_source(held)
    try:
        yield held
    finally:
        set_source(previous)


class Frozen:
    """A clock that stands still until told to move."""

    def __init__(self, at: datetime):
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = as_utc(at)

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


def start_from_environment() -> None:
    """KIOSK_CLOCK_START=2026-12-02T23:59:58Z starts the clock there and lets it run:
    how CI runs the suite (and the browser tests' servers) across midnight on purpose."""
    text = os.environ.get("KIOSK_CLOCK_START", "").strip()
    if text:
        set_source(running_from(datetime.fromisoformat(text.replace("Z", "+00:00"))))


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime from an aware one, or from a naive one taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for a clinic's time zone name, or a DomainError naming the field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError("bad_timezone", f"Unknown time zone “{name}”.", field="timezone") from exc


def to_local(value: datetime, tz: ZoneInfo) -> datetime:
    """A UTC datetime seen on the clinic's wall clock."""
    return as_utc(value).astimezone(tz)


def moment_text(value: datetime | None, tz: ZoneInfo) -> str:
    """A moment as staff read it in the clinic: 'Mon 7 Dec 09:00' ("" for none)."""
    if value is None:
        return ""
    local = to_local(value, tz)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of a calendar day in the clinic's time zone."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def hour_floor(value: datetime, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the clinic-local hour containing `value`."""
    local = to_local(value, tz).replace(minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def format_iso_z(value: datetime) -> str:
    """A UTC timestamp as YYYY-MM-DDTHH:MM:SSZ, the form SYNC.md uses for task uids."""
    return as_utc(value).strftime(ISO_Z)


def parse_local_datetime(text: str, tz: ZoneInfo, field: str) -> datetime:
    """A datetime-local form value (clinic wall clock) as aware UTC, or a DomainError:
    core.validate.timestamp (the one parser, and the calendar bounds of every op's times),
    with the form's own wording when the text is not a time at all."""
    from .validate import timestamp

    try:
        return timestamp(text.strip() if isinstance(text, str) else text, field, "The time",
                         tz=tz, required=True)
    except DomainError as exc:
        if exc.code in ("bad_time", "required"):
            raise DomainError("bad_time", "Enter a date and time, e.g. 2026-11-22 14:30.",
                              field=field) from None
        raise


start_from_environment()
