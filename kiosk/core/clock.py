"""Time is UTC inside; the clinic's time zone only on screens and documents."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import DomainError

ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    """The current time, aware, in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


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
    """A datetime-local form value (clinic wall clock) as aware UTC, or a DomainError
    (core.validate.timestamp: the same calendar bounds as every op's times)."""
    from .validate import timestamp

    try:
        datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise DomainError("bad_time", "Enter a date and time, e.g. 2026-11-22 14:30.",
                          field=field) from exc
    return timestamp(text.strip(), field, "The time", tz=tz)
