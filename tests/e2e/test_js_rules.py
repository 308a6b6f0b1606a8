"""The two rules a tablet computes itself, run in a real browser against the server's own:
a task's uid (uuid5 of the order uid and the due time) and an order's due times, for many
orders around the daylight-saving changes of clinics in three time zones."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.core.clock import format_iso_z
from kiosk.treatments.schedule import due_times, task_uid

pytestmark = pytest.mark.e2e

RULES = "/static/js/client/rules.js"
# Each zone's clock changes in 2026 (UTC instants, near enough: orders start around them).
CHANGES = {
    "Europe/London": ["2026-03-29T01:00:00", "2026-10-25T01:00:00"],
    "America/New_York": ["2026-03-08T07:00:00", "2026-11-01T06:00:00"],
    "Australia/Sydney": ["2026-04-04T16:00:00", "2026-10-03T16:00:00"],
}
# Set times that fall in the hour that is skipped or repeated, and ordinary ones.
TIMES = ["00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "08:00", "12:00", "20:00", "23:30"]


def orders(count: int, seed: int = 14) -> list[dict]:
    """Random orders (as the op's args, plus the zone and the horizon) starting near a change."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        tz = list(CHANGES)[i % len(CHANGES)]
        change = datetime.fromisoformat(rng.choice(CHANGES[tz])).replace(tzinfo=UTC)
        start = change + timedelta(minutes=15 * rng.randint(-4 * 72, 4 * 24))
        order = {"order": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                 "start": format_iso_z(start), "tz": tz,
                 "until": format_iso_z(start + timedelta(hours=rng.choice([24, 48, 96])))}
        kind = rng.choice(["every", "every", "times", "times", "once", "prn"])
        if kind == "every":
            order["every_hours"] = rng.choice([1, 2, 3, 4, 6, 8, 12, 24])
        elif kind == "times":
            order["times"] = sorted(rng.sample(TIMES, rng.randint(1, 4)))
        elif kind == "prn":
            order["prn"] = True
        if rng.random() < 0.3:
            order["end"] = format_iso_z(start + timedelta(minutes=30 * rng.randint(1, 150)))
        out.append(order)
    return out


def python_side(order: dict) -> list[list[str]]:
    """[due time, task uid] of each task the server makes for `order`."""
    parse = datetime.fromisoformat
    dues = due_times(start=parse(order["start"]), end=parse(order["end"]) if "end" in order
                     else None, every_hours=order.get("every_hours"),
                     times=order.get("times", []), prn=order.get("prn", False), after=None,
                     until=parse(order["until"]), tz=ZoneInfo(order["tz"]))
    return [[format_iso_z(d), task_uid(order["order"], d)] for d in dues]


JS_SIDE = f"""orders => import('{RULES}').then(r => orders.map(o =>
  r.dueTimes(o, Date.parse(o.until), o.tz).map(ms =>
    [new Date(ms).toISOString().slice(0, 19) + "Z", r.taskUid(o.order, ms)])))"""


@pytest.fixture
def page(browser, live_server):
    """Any page of the application: the rules are imported from its static files."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server}/login")
    yield page
    context.close()


def test_the_tablets_schedule_and_task_uids_are_the_servers(page):
    many = orders(600)
    js = page.evaluate(JS_SIDE, many)
    expected = [python_side(o) for o in many]
    wrong = [(o, j, p) for o, j, p in zip(many, js, expected, strict=True) if j != p]
    assert not wrong, f"{len(wrong)} of {len(many)} orders differ, e.g. {wrong[0]}"
    # The cases that matter were there: set times in a skipped or repeated hour.
    assert sum(len(p) for p in expected) > 3000
    assert any("times" in o and {"01:30", "02:30"} & set(o["times"]) for o in many)


def test_uuid5_is_pythons_for_any_name(page):
    rng = random.Random(5)
    names = ["", "a", "2026-03-29T01:30:00Z", "é ü 中文 🐕", "x" * 200] + [
        "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 80)))
        for _ in range(200)]
    spaces = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in names]
    js = page.evaluate(f"""([spaces, names]) => import('{RULES}').then(r =>
        names.map((n, i) => r.uuid5(spaces[i], n)))""", [spaces, names])
    assert js == [str(uuid.uuid5(uuid.UUID(s), n)) for s, n in zip(spaces, names, strict=True)]


def test_a_wall_clock_time_is_read_as_python_reads_it(page):
    """A time that never happens (clocks forward) or happens twice (clocks back)."""
    cases = [("Europe/London", 2026, 3, 29, 1, 30), ("Europe/London", 2026, 10, 25, 1, 30),
             ("America/New_York", 2026, 3, 8, 2, 30), ("America/New_York", 2026, 11, 1, 1, 30),
             ("Australia/Sydney", 2026, 10, 4, 2, 30), ("Australia/Sydney", 2026, 4, 5, 2, 30),
             ("Australia/Sydney", 2026, 7, 1, 12, 0)]
    js = page.evaluate(f"""cases => import('{RULES}').then(r => cases.map(([tz, y, m, d, h, mi]) =>
        new Date(r.localToUtc(y, m, d, h, mi, tz)).toISOString().slice(0, 19) + "Z"))""", cases)
    assert js == [format_iso_z(datetime(y, m, d, h, mi, tzinfo=ZoneInfo(tz)))
                  for tz, y, m, d, h, mi in cases]


def test_the_maintenance_countdown_reads_as_the_servers(page):
    from kiosk.maintenance.hooks import countdown_text

    seconds = [0, 1, 59, 60, 61, 599, 3599, 3600, 3661, 86399, 86400, 90061, 200000]
    js = page.evaluate("""s => import('/static/js/maintenance.js').then(m =>
        s.map(x => m.countdown(x)))""", seconds)
    assert js == [countdown_text(x) for x in seconds]
