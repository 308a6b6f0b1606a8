"""Small parsers shared by services: each returns a clean value or raises DomainError."""

import re
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from .errors import DomainError

# The calendar the clinic lives in. Anything outside is a typo or a tablet's dead clock, and
# keeping a margin from year 1 and year 9999 means adding days or hours to a checked time
# can never overflow (a 500 on /api/sync makes a tablet resend the op for ever).
TIME_MIN = datetime(1900, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)
DAY_MIN, DAY_MAX = TIME_MIN.date(), date(2199, 12, 31)
# The largest whole number an INTEGER column holds on both SQLite and PostgreSQL.
INT_MAX = 2**31 - 1
ERR_NOT_A_NUMBER = "{label} must be a number."

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_required(value, field: str, label: str, max_len: int) -> str:
    """A stripped, non-empty string no longer than `max_len`."""
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise DomainError("bad_type", f"{label} must be text.", field=field)
    if not text:
        raise DomainError("required", f"{label} is required.", field=field)
    _printable(text, field, label)
    if len(text) > max_len:
        raise DomainError("too_long", f"{label} is longer than {max_len} characters.", field=field)
    return text


def _printable(text: str, field: str, label: str) -> None:
    """Control characters other than tab and line breaks are never stored (NUL breaks
    PostgreSQL and nothing a person types contains them)."""
    if CONTROL.search(text):
        raise DomainError("bad_text", f"{label} contains control characters.", field=field)


def text_optional(value, field: str, label: str, max_len: int) -> str | None:
    """A stripped string, or None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return text_required(value, field, label, max_len)


def decimal_optional(value, field: str, label: str, minimum: Decimal | None = Decimal(0),
                     maximum: Decimal | None = None) -> Decimal | None:
    """A number (as Decimal) from text or a number, or None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise DomainError("not_a_number", ERR_NOT_A_NUMBER.format(label=label),
                          field=field)
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation as exc:
        raise DomainError("not_a_number", ERR_NOT_A_NUMBER.format(label=label),
                          field=field) from exc
    if not number.is_finite():
        raise DomainError("not_a_number", ERR_NOT_A_NUMBER.format(label=label),
                          field=field)
    if minimum is not None and number < minimum:
        raise DomainError("out_of_range", f"{label} must be at least {minimum}.", field=field)
    if maximum is not None and number > maximum:
        raise DomainError("out_of_range", f"{label} must be at most {maximum}.", field=field)
    return number


def int_optional(value, field: str, label: str, minimum: int, maximum: int, *,
                 text: bool = True) -> int | None:
    """A whole number between the bounds, or None when empty (from text too, unless
    `text` is False: an op's JSON sends numbers as numbers)."""
    if value is None or (text and isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or text and isinstance(value, str)):
        raise DomainError("not_a_number", f"{label} must be a whole number.", field=field)
    if isinstance(value, str) and len(value.strip()) > 20:  # int() of huge text is slow
        raise DomainError("out_of_range", f"{label} must be between {minimum} and {maximum}.",
                          field=field)
    try:
        number = int(str(value).strip())
    except ValueError as exc:
        raise DomainError("not_a_number", f"{label} must be a whole number.", field=field) from exc
    if not minimum <= number <= maximum:
        raise DomainError("out_of_range", f"{label} must be between {minimum} and {maximum}.",
                          field=field)
    return number


def choice(value, field: str, label: str, options) -> str:
    """One of `options`, or a DomainError listing them."""
    if value not in options:
        raise DomainError("bad_choice", f"{label} must be one of: {', '.join(options)}.",
                          field=field)
    return value


def times_list(value, field: str = "times", max_items: int = 24) -> list[str]:
    """Set times as a sorted list of unique 'HH:MM' strings (from a list or '08:00, 20:00'),
    at most `max_items` (24: set times never make more tasks than an hourly order)."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise DomainError("bad_type", "Times must be a list of HH:MM.", field=field)
    out = set()
    for item in items:
        text = item.strip() if isinstance(item, str) else None
        if not text:
            continue
        if not HHMM.match(text):
            raise DomainError("bad_time", f"“{text}” is not a time of day (HH:MM, 00:00–23:59).",
                              field=field)
        out.add(text)
    if len(out) > max_items:
        raise DomainError("too_many", f"At most {max_items} set times a day.", field=field)
    return sorted(out)


def timestamp(value, field: str, label: str, *, tz: tzinfo | None = None,
              required: bool = False, bounded: bool = True) -> datetime | None:
    """An ISO-8601 date and time as aware UTC, between TIME_MIN and TIME_MAX: the one parser
    of times that come from outside (forms, ops' arguments, a sync request's clocks).

    A value without an offset is read on `tz` (the clinic's wall clock, for forms); without
    `tz` it is refused (an op's times say their zone). None or "" is None unless `required`.
    `bounded=False` takes any time UTC can hold: a device's own clock (a sync request's
    `sent_at`, an op's `at`) may be far off, and is corrected by its skew, never refused.
    """
    if value is None or value == "":
        if required:
            raise DomainError("required", f"{label} is required.", field=field)
        return None
    parsed = _iso_read(value, field, label)
    if parsed.tzinfo is None:
        if tz is None:
            raise DomainError("bad_time", f"{label} needs a time zone (Z).", field=field)
        parsed = parsed.replace(tzinfo=tz)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        parsed = None
    if parsed is None or bounded and not TIME_MIN <= parsed < TIME_MAX:
        raise DomainError("out_of_range", f"{label} must be between {TIME_MIN.year} and "
                          f"{TIME_MAX.year - 1}.", field=field)
    return parsed


def _iso_read(value, field: str, label: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > 40:
        raise DomainError("bad_time", f"{label} must be a date and time like "
                          "2026-11-22T10:15:03Z.", field=field)
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DomainError("bad_time", f"{label}: “{value.strip()[:40]}” is not a date and "
                          "time (e.g. 2026-11-22T10:15:03Z).", field=field) from None


def day(value, field: str, label: str) -> date | None:
    """A calendar date (YYYY-MM-DD) between DAY_MIN and DAY_MAX, or None when empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 10:
        raise DomainError("bad_date", f"{label} must be a date (YYYY-MM-DD).", field=field)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise DomainError("bad_date", f"{label} must be a date (YYYY-MM-DD).",
                          field=field) from None
    if not DAY_MIN <= parsed <= DAY_MAX:
        raise DomainError("out_of_range", f"{label} must be between {DAY_MIN.year} and "
                          f"{DAY_MAX.year}.", field=field)
    return parsed
