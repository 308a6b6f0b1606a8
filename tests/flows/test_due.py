"""Due dates: elapsed time, calendar days on the clinic's wall clock, weekends, reminders."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.flows.due import UNITS, WEEKEND_RULES, due_compute, due_text, remind_compute

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
AUCKLAND = ZoneInfo("Pacific/Auckland")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz, *args) -> datetime:
    return datetime(*args, tzinfo=tz)


def due(anchor, amount, unit, tz, weekend="keep"):
    return due_compute(anchor=anchor, amount=amount, unit=unit, weekend=weekend, tz=tz)


# -- minutes and hours: time that really passes -------------------------------------------

@pytest.mark.parametrize("tz, anchor, amount, unit, expected", [
    # London springs forward 2026-03-29 01:00 UTC: 00:30 GMT + 2 h is 03:30 BST.
    (LONDON, utc(2026, 3, 29, 0, 30), 2, "hours", utc(2026, 3, 29, 2, 30)),
    (LONDON, utc(2026, 3, 29, 0, 50), 20, "minutes", utc(2026, 3, 29, 1, 10)),
    # London falls back 2026-10-25 01:00 UTC.
    (LONDON, utc(2026, 10, 25, 0, 30), 2, "hours", utc(2026, 10, 25, 2, 30)),
    # New York springs forward 2026-03-08 07:00 UTC, falls back 2026-11-01 06:00 UTC.
    (NEW_YORK, utc(2026, 3, 8, 6, 30), 90, "minutes", utc(2026, 3, 8, 8, 0)),
    (NEW_YORK, utc(2026, 11, 1, 5, 0), 3, "hours", utc(2026, 11, 1, 8, 0)),
    # In the second 01:00-02:00 (EST) minutes stay elapsed, not the first 01:53 (EDT).
    (NEW_YORK, utc(2026, 11, 1, 6, 46), 7, "minutes", utc(2026, 11, 1, 6, 53)),
])
def test_minutes_and_hours_are_elapsed_time_across_a_clock_change(
        tz, anchor, amount, unit, expected):
    result = due(anchor, amount, unit, tz)
    assert result == expected
    assert result.tzinfo is UTC


def test_two_hours_across_spring_forward_read_three_on_the_wall_clock():
    anchor = local(LONDON, 2026, 3, 29, 0, 30)
    assert due(anchor, 2, "hours", LONDON).astimezone(LONDON).hour == 3


def test_two_hours_across_fall_back_read_one_on_the_wall_clock():
    anchor = local(NEW_YORK, 2026, 11, 1, 0, 30)
    assert due(anchor, 2, "hours", NEW_YORK).astimezone(NEW_YORK).strftime("%H:%M") == "01:30"


# -- days and weeks: the same wall time on a later day ------------------------------------

@pytest.mark.parametrize("tz, start, amount, unit", [
    (LONDON, (2026, 3, 28, 9, 0), 1, "days"),        # over spring forward
    (LONDON, (2026, 10, 24, 9, 0), 1, "days"),       # over fall back
    (LONDON, (2026, 3, 25, 9, 0), 1, "weeks"),
    (NEW_YORK, (2026, 3, 7, 9, 0), 2, "days"),
    (NEW_YORK, (2026, 10, 30, 9, 0), 1, "weeks"),
    (AUCKLAND, (2026, 4, 4, 9, 0), 1, "days"),       # NZ autumn: clocks back
    (AUCKLAND, (2026, 9, 26, 9, 0), 1, "days"),      # NZ spring: clocks forward
])
def test_days_and_weeks_keep_the_local_wall_time_across_a_clock_change(tz, start, amount, unit):
    anchor = local(tz, *start).astimezone(UTC)
    result = due(anchor, amount, unit, tz)
    days = amount * (7 if unit == "weeks" else 1)
    seen = result.astimezone(tz)
    assert (seen.date(), seen.strftime("%H:%M")) == (
        (local(tz, *start) + timedelta(days=days)).date(), "09:00")
    # Elapsed time is a day plus or minus the hour the clocks moved.
    assert result - anchor != timedelta(days=days)


def test_days_in_london_are_twenty_three_hours_over_spring_forward():
    anchor = local(LONDON, 2026, 3, 28, 9, 0)
    assert due(anchor, 1, "days", LONDON) == utc(2026, 3, 29, 8, 0)


def test_a_local_time_that_does_not_exist_moves_forward_by_the_gap():
    london = due(local(LONDON, 2026, 3, 28, 1, 30), 1, "days", LONDON)
    assert london.astimezone(LONDON).strftime("%d %H:%M") == "29 02:30"
    assert london == utc(2026, 3, 29, 1, 30)
    new_york = due(local(NEW_YORK, 2026, 3, 7, 2, 30), 1, "days", NEW_YORK)
    assert new_york.astimezone(NEW_YORK).strftime("%d %H:%M") == "08 03:30"
    assert new_york == utc(2026, 3, 8, 7, 30)


def test_an_ambiguous_local_time_takes_the_first_of_the_two():
    london = due(local(LONDON, 2026, 10, 24, 1, 30), 1, "days", LONDON)
    assert london == utc(2026, 10, 25, 0, 30)          # 01:30 BST, not 01:30 GMT
    new_york = due(local(NEW_YORK, 2026, 10, 31, 1, 30), 1, "days", NEW_YORK)
    assert new_york == utc(2026, 11, 1, 5, 30)         # 01:30 EDT, not EST


def test_amount_zero_is_the_anchor_itself():
    anchor = utc(2026, 12, 2, 14, 5)
    assert due(anchor, 0, "minutes", LONDON) == anchor
    assert due(anchor, 0, "days", LONDON) == anchor


def test_an_anchor_in_another_zone_comes_back_in_utc():
    anchor = datetime(2026, 12, 2, 9, 0, tzinfo=AUCKLAND)
    result = due(anchor, 30, "minutes", LONDON)
    assert result.tzinfo is UTC
    assert result == anchor + timedelta(minutes=30)


# -- weekends ----------------------------------------------------------------------------

SATURDAY_DUE = local(LONDON, 2026, 12, 5, 9, 0)       # Saturday 5 December
FRIDAY_ANCHOR = local(LONDON, 2026, 12, 4, 9, 0)


@pytest.mark.parametrize("days, weekend, expected_day", [
    (1, "keep", "Sat 5"), (1, "friday", "Fri 4"), (1, "monday", "Mon 7"),
    (2, "keep", "Sun 6"), (2, "friday", "Fri 4"), (2, "monday", "Mon 7"),
    (3, "friday", "Mon 7"), (0, "monday", "Fri 4"),
])
def test_a_weekend_due_moves_to_friday_or_monday_at_the_same_wall_time(
        days, weekend, expected_day):
    result = due(FRIDAY_ANCHOR, days, "days", LONDON, weekend).astimezone(LONDON)
    assert f"{result:%a} {result.day}" == expected_day
    assert result.strftime("%H:%M") == "09:00"


def test_hours_landing_on_a_weekend_move_too():
    result = due(FRIDAY_ANCHOR, 26, "hours", LONDON, "monday").astimezone(LONDON)
    assert result.strftime("%a %d %H:%M") == "Mon 07 11:00"
    result = due(FRIDAY_ANCHOR, 26, "hours", LONDON, "friday").astimezone(LONDON)
    assert result.strftime("%a %d %H:%M") == "Fri 04 11:00"


def test_a_sunday_that_is_a_clock_change_day():
    anchor = local(LONDON, 2026, 3, 27, 9, 0)          # Friday, GMT
    keep = due(anchor, 2, "days", LONDON, "keep")
    assert keep == utc(2026, 3, 29, 8, 0)              # Sunday 09:00 BST
    assert due(anchor, 2, "days", LONDON, "friday") == utc(2026, 3, 27, 9, 0)
    assert due(anchor, 2, "days", LONDON, "monday") == utc(2026, 3, 30, 8, 0)
    # Hours that reach the Sunday keep their wall time when moved off it.
    saturday_noon = local(LONDON, 2026, 3, 28, 12, 0)
    moved = due(saturday_noon, 24, "hours", LONDON, "monday")
    assert moved.astimezone(LONDON).strftime("%a %d %H:%M") == "Mon 30 13:00"


def test_a_sunday_due_in_a_gap_moves_to_monday_at_the_intended_wall_time():
    anchor = local(NEW_YORK, 2026, 3, 6, 2, 30)        # Friday 02:30
    result = due(anchor, 2, "days", NEW_YORK, "monday")
    assert result.astimezone(NEW_YORK).strftime("%a %d %H:%M") == "Mon 09 02:30"
    kept = due(anchor, 2, "days", NEW_YORK, "keep")
    assert kept.astimezone(NEW_YORK).strftime("%a %d %H:%M") == "Sun 08 03:30"


def test_far_from_utc_the_weekend_is_the_clinics_not_utcs():
    # Monday 09:00 in Auckland is Sunday in UTC: it is not a weekend there.
    friday = local(AUCKLAND, 2026, 12, 4, 9, 0)
    monday = due(friday, 3, "days", AUCKLAND, "friday")
    assert monday.weekday() == 6                         # a Sunday in UTC …
    assert monday.astimezone(AUCKLAND).strftime("%a %d %H:%M") == "Mon 07 09:00"
    # Saturday 08:00 in Auckland is still Friday in UTC: it is a weekend there.
    saturday = due(friday, 23, "hours", AUCKLAND, "keep")
    assert saturday.weekday() == 4
    moved = due(friday, 23, "hours", AUCKLAND, "monday")
    assert moved.astimezone(AUCKLAND).strftime("%a %d %H:%M") == "Mon 07 08:00"
    back = due(friday, 23, "hours", AUCKLAND, "friday")
    assert back.astimezone(AUCKLAND).strftime("%a %d %H:%M") == "Fri 04 08:00"


def test_auckland_sunday_clock_change_with_the_weekend_rules():
    friday = local(AUCKLAND, 2026, 9, 25, 9, 0)         # NZST
    assert due(friday, 2, "days", AUCKLAND, "keep").astimezone(AUCKLAND).strftime(
        "%a %d %H:%M %Z") == "Sun 27 09:00 NZDT"
    assert due(friday, 2, "days", AUCKLAND, "monday").astimezone(AUCKLAND).strftime(
        "%a %d %H:%M %Z") == "Mon 28 09:00 NZDT"
    assert due(friday, 2, "days", AUCKLAND, "friday") == friday


# -- reminders ---------------------------------------------------------------------------

def test_remind_hours_before_is_elapsed_time():
    due_at = utc(2026, 3, 29, 2, 30)                     # 03:30 BST
    assert remind_compute(due=due_at, amount=2, unit="hours", tz=LONDON) == utc(
        2026, 3, 29, 0, 30)
    assert remind_compute(due=due_at, amount=45, unit="minutes", tz=LONDON) == utc(
        2026, 3, 29, 1, 45)


def test_remind_days_before_keeps_the_wall_time():
    due_at = local(LONDON, 2026, 3, 30, 9, 0).astimezone(UTC)
    remind = remind_compute(due=due_at, amount=3, unit="days", tz=LONDON)
    assert remind.astimezone(LONDON).strftime("%a %d %H:%M %Z") == "Fri 27 09:00 GMT"
    assert remind.tzinfo is UTC


# -- programming errors ------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"unit": "fortnights"}, {"unit": "Days"}, {"weekend": "sunday"}, {"weekend": None},
    {"amount": -1}, {"amount": 1.5}, {"amount": True}, {"amount": "3"},
    {"anchor": datetime(2026, 12, 2, 9, 0)},
])
def test_bad_arguments_are_a_value_error(changes):
    arguments = {"anchor": utc(2026, 12, 2, 9, 0), "amount": 1, "unit": "days",
                 "weekend": "keep", "tz": LONDON, **changes}
    with pytest.raises(ValueError):
        due_compute(**arguments)


@pytest.mark.parametrize("changes", [
    {"unit": "weeks"}, {"unit": "seconds"}, {"amount": 0}, {"amount": -2},
    {"due": datetime(2026, 12, 2, 9, 0)},
])
def test_bad_reminder_arguments_are_a_value_error(changes):
    arguments = {"due": utc(2026, 12, 2, 9, 0), "amount": 1, "unit": "hours", "tz": LONDON,
                 **changes}
    with pytest.raises(ValueError):
        remind_compute(**arguments)


# -- many cases --------------------------------------------------------------------------

@pytest.mark.parametrize("tz", [LONDON, NEW_YORK, AUCKLAND], ids=str)
def test_many_anchors_over_two_years(tz):
    rng = random.Random(f"due-{tz}")
    start, span = utc(2026, 1, 1), 2 * 366 * 24 * 60
    for _ in range(500):
        anchor = start + timedelta(minutes=rng.randrange(span))
        amount = rng.choice([0, 1, 2, 3, 5, 7, 13, 30, 90, 200])
        for unit in UNITS:
            for weekend in WEEKEND_RULES:
                result = due(anchor, amount, unit, tz, weekend)
                assert result.tzinfo is UTC
                seen = result.astimezone(tz)
                if weekend != "keep":
                    assert seen.weekday() < 5, (anchor, amount, unit, weekend)
                if unit in ("days", "weeks"):
                    _assert_wall_time_kept(anchor, seen, tz)
                elif weekend == "keep":
                    assert result - anchor == timedelta(**{unit: amount})


def _assert_wall_time_kept(anchor, seen, tz):
    wall = anchor.astimezone(tz)
    if seen.time() == wall.time():
        return
    # Only a wall time that does not exist that day may differ: moved forward by the gap.
    intended = seen.replace(hour=wall.hour, minute=wall.minute, tzinfo=None)
    gap = seen.utcoffset() - (seen - timedelta(hours=3)).utcoffset()
    assert intended + gap == seen.replace(tzinfo=None), (anchor, seen)


# -- words -------------------------------------------------------------------------------

def test_due_text_is_the_clinics_plain_day_and_time():
    assert due_text(utc(2026, 12, 7, 9, 0), LONDON) == "Mon 7 Dec 09:00"
    assert due_text(utc(2026, 12, 6, 20, 0), AUCKLAND) == "Mon 7 Dec 09:00"
    assert due_text(utc(2026, 7, 14, 8, 5), LONDON) == "Tue 14 Jul 09:05"
