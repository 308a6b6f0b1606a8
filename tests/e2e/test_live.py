"""Live updates in a real browser: pokes refresh one board row, bursts are gathered,
a revoked wall display is cut off, and a board says so (in clinic time) when it is no
longer live."""

import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from .conftest import LIVE, LIVE_CONNECTED, LIVE_JOINED, WALL, sign_in

pytestmark = pytest.mark.e2e

ICU_BOARD = 1
OTHER_BOARD = 2
OPEN_STATES = ("overdue", "due", "scheduled")
ROW_CHANGE_MS = 15_000  # a poke, a burst, the row rendered and swapped, on a busy server
BURST_MS = 250  # live.js gathers the pokes of this long into one refresh
REVOKE_MS = 10_000
BANNER_TEXT = re.compile(r"^Not live — last updated \d{2}:\d{2}$")

CONNECTED = LIVE_CONNECTED
JOINED = LIVE_JOINED
# Cut the page's connection for good (no reconnecting by itself).
DISCONNECT = f"""() => import('{LIVE}').then(({{socket}}) => {{
  socket.io.reconnection(false);
  socket.disconnect();
}})"""
ROW_CHIPS = """(id) => {
  const counts = {};
  document.querySelectorAll("#" + CSS.escape(id) + " .chip").forEach((chip) => {
    const state = Array.from(chip.classList).find((c) => c !== "chip");
    counts[state] = (counts[state] || 0) + parseInt(chip.textContent, 10);
  });
  return counts;
}"""
ROW_HTML = "(id) => { const row = document.getElementById(id); return row && row.innerHTML; }"
ROW_CHANGED = """([id, before]) => {
  const row = document.getElementById(id);
  return row !== null && row.innerHTML !== before;
}"""
# Open tasks on a sheet of today: uid, state, and hours from now (column − current hour).
SHEET_TASKS = """(states) => {
  const grid = document.getElementById("sheet-grid");
  const now = grid.dataset.currentHour === "" ? null : parseInt(grid.dataset.currentHour, 10);
  const out = [];
  document.querySelectorAll("#sheet-grid a.task").forEach((a) => {
    const state = states.find((s) => a.classList.contains(s));
    if (!state) { return; }
    const column = a.closest("td").cellIndex - 1;
    out.push({uid: a.dataset.task, state: state, offset: now === null ? null : column - now});
  });
  return out;
}"""
# The pokes as live.js hands them on: one list per burst.
RECORD_POKES = """() => {
  window.__batches = [];
  document.addEventListener("live:pokes", (evt) => window.__batches.push(evt.detail));
}"""
# Complete several tasks at once, as fast as the browser can send them.
COMPLETE_ALL = """async (uids) => {
  const csrf = document.querySelector("input[name=csrf_token]").value;
  const forms = await Promise.all(uids.map(async (uid) => {
    const dialog = await (await fetch("/tasks/" + uid, {headers: {"HX-Request": "true"}})).text();
    const body = new FormData();
    body.append("csrf_token", csrf);
    if (/name="value"/.test(dialog)) { body.append("value", "38.5"); }
    return body;
  }));
  const responses = await Promise.all(uids.map((uid, i) => fetch("/tasks/" + uid + "/complete", {
    method: "POST", body: forms[i], headers: {"HX-Request": "true", "X-CSRFToken": csrf}})));
  return responses.map((r) => r.status);
}"""


class RequestLog:
    """Every request a page makes, to see what a poke made it fetch."""

    def __init__(self, page):
        self.entries: list[tuple[str, str]] = []
        page.on("request", lambda request: self.entries.append(
            (request.method, urlsplit(request.url).path)))

    def mark(self) -> int:
        """A point in the log; `since` answers what came after it."""
        return len(self.entries)

    def since(self, mark: int, prefix: str = "/boards/") -> list[tuple[str, str]]:
        """Requests after `mark` whose path starts with `prefix`."""
        return [(method, path) for method, path in self.entries[mark:]
                if path.startswith(prefix)]


def board_url(base_url: str, board_id: int = ICU_BOARD) -> str:
    """A board's page."""
    return f"{base_url}/boards/{board_id}"


def row_path(uid: str, board_id: int = ICU_BOARD) -> str:
    """The path of one patient's row partial."""
    return f"/boards/{board_id}/rows/{uid}"


def open_board(page, base_url: str, board_id: int = ICU_BOARD) -> None:
    """Open a board and wait until its socket is connected and in the board's room."""
    page.goto(board_url(base_url, board_id))
    page.locator("#board-grid .board-row").first.wait_for()
    page.wait_for_function(CONNECTED)
    answer = page.evaluate(JOINED)
    assert answer["joined"] == [f"board:{board_id}"], answer
    # The connection is the live module's own: nothing of it is published on window.
    assert page.evaluate("() => Object.keys(window).filter((k) => /^kiosk/i.test(k))") == []


def board_window(page) -> tuple[int, int]:
    """Hours the board shows before and after the current one."""
    hours = page.locator("#board-grid thead th.hour")
    classes = hours.evaluate_all("ths => ths.map(th => th.className)")
    back = next(i for i, css in enumerate(classes) if re.search(r"\bnow\b", css))
    return back, len(classes) - 1 - back


def board_uids(page) -> list[str]:
    """The patients on the open board, top to bottom."""
    ids = page.locator("#board-grid .board-row").evaluate_all("rows => rows.map(r => r.id)")
    return [row_id.removeprefix("row-") for row_id in ids]


def open_tasks(page, base_url: str, uid: str, window: tuple[int, int]) -> list[dict]:
    """A patient's open tasks of today that the board shows, most urgent first."""
    page.goto(f"{base_url}/patients/{uid}/sheet")
    page.locator("#sheet-grid").wait_for()
    back, ahead = window
    tasks = [t for t in page.evaluate(SHEET_TASKS, list(OPEN_STATES))
             if t["offset"] is not None and -back <= t["offset"] <= ahead]
    return sorted(tasks, key=lambda t: OPEN_STATES.index(t["state"]))


def open_total(counts: dict) -> int:
    """Chips of tasks still to do."""
    return sum(counts.get(state, 0) for state in OPEN_STATES)


@pytest.fixture
def board(wall, live_server):
    """The ICU board on the wall, live, with a log of its requests."""
    open_board(wall, live_server)
    return wall, RequestLog(wall)


def test_a_task_done_on_a_tablet_refreshes_only_its_row(board, tablet, live_server):
    """The board shows the change within seconds, without a reload, by fetching one row."""
    wall, requests = board
    window = board_window(wall)
    found = None
    for urgent in (("overdue", "due"), OPEN_STATES):
        for uid in board_uids(wall):
            tasks = [t for t in open_tasks(tablet, live_server, uid, window)
                     if t["state"] in urgent]
            if tasks:
                found = uid, tasks[0]
                break
        if found:
            break
    assert found, "No ICU patient has an open task within the board's hours."
    uid, task = found
    row_id = f"row-{uid}"
    wall.evaluate("window.__notReloaded = true")
    before_html = wall.evaluate(ROW_HTML, row_id)
    before = wall.evaluate(ROW_CHIPS, row_id)

    link = tablet.locator(f'a.task[data-task="{task["uid"]}"]')
    link.tap()
    dialog = tablet.locator("dialog#task-dialog")
    dialog.locator(".complete-form").wait_for()
    value = dialog.locator("input[name=value]")
    if value.count():
        value.fill("38.5")
    mark = requests.mark()
    with tablet.expect_response(lambda r: r.url.endswith(f"/tasks/{task['uid']}/complete")
                                and r.request.method == "POST") as completed:
        dialog.locator(".complete-form").get_by_role("button", name="✓ Done").tap()
    assert completed.value.ok, completed.value.status

    wall.wait_for_function(ROW_CHANGED, arg=[row_id, before_html], timeout=ROW_CHANGE_MS)
    wall.wait_for_timeout(500)  # let htmx settle, and let any extra fetch show itself
    assert wall.evaluate("window.__notReloaded === true"), "the board page was reloaded"
    after = wall.evaluate(ROW_CHIPS, row_id)
    assert after.get("done", 0) == before.get("done", 0) + 1, (before, after)
    assert open_total(after) == open_total(before) - 1, (before, after)
    assert after.get(task["state"], 0) <= before.get(task["state"], 0), (before, after)
    assert requests.since(mark) == [("GET", row_path(uid))]


def test_a_burst_of_changes_fetches_each_row_once(board, tablet, live_server):
    """Two tasks of one patient and one of another, done at once: one fetch per row."""
    wall, requests = board
    window = board_window(wall)
    picked: dict[str, list[str]] = {}
    for uid in board_uids(wall):
        tasks = open_tasks(tablet, live_server, uid, window)
        wanted = 2 if not picked else 1
        if len(tasks) >= wanted:
            picked[uid] = [t["uid"] for t in tasks[:wanted]]
        if len(picked) == 2:
            break
    assert len(picked) == 2, "Not enough open tasks on the ICU board for a burst."
    (first, first_tasks), (second, second_tasks) = picked.items()
    before = {uid: wall.evaluate(ROW_HTML, f"row-{uid}") for uid in picked}
    wall.evaluate(RECORD_POKES)

    mark = requests.mark()
    statuses = tablet.evaluate(COMPLETE_ALL, first_tasks + second_tasks)
    assert statuses == [200, 200, 200], statuses

    for uid in picked:
        wall.wait_for_function(ROW_CHANGED, arg=[f"row-{uid}", before[uid]],
                               timeout=ROW_CHANGE_MS)
    wall.wait_for_timeout(1_500)  # several burst windows: any extra fetch would show now
    # The pokes as live.js handed them on, gathered BURST_MS at a time. On a busy server
    # the three commits can land in more than one burst: each burst asks for each of its
    # rows once (htmx may fold a row's second ask into the one in flight).
    batches = wall.evaluate("window.__batches")
    patients = [poke["patient"] for batch in batches for poke in batch]
    assert sorted(patients) == sorted([first, first, second]), batches
    asks = [("GET", row_path(uid)) for batch in batches
            for uid in {poke["patient"] for poke in batch}]
    fetched = requests.since(mark)
    assert set(fetched) == {("GET", row_path(first)), ("GET", row_path(second))}, fetched
    assert len(fetched) <= len(asks), (batches, fetched)
    if len(batches) == 1:  # the usual case: one burst, one fetch per row
        assert len(fetched) == 2, fetched


@pytest.fixture
def display_context(browser):
    """A fresh 1080p browser with no staff session, for a wall display."""
    context = browser.new_context(viewport=WALL)
    yield context
    context.close()


def display_add(page, base_url: str, name: str) -> str:
    """Add a display for the ICU board on the admin page; the link it shows once."""
    page.goto(f"{base_url}/admin/displays")
    page.locator("input[name=name]").fill(name)
    page.locator("select[name=board]").select_option(str(ICU_BOARD))
    page.get_by_role("button", name="Add display").click()
    link = page.locator("input.display-link")
    link.wait_for()
    value = link.input_value()
    assert re.match(re.escape(base_url) + r"/display#\S{20,}$", value), value
    return value


def display_revoke(page, base_url: str, name: str) -> None:
    """Revoke the named display on the admin page (accepting the confirmation)."""
    page.goto(f"{base_url}/admin/displays")
    row = page.locator("#displays tbody tr").filter(
        has=page.get_by_role("cell", name=name, exact=True))
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    page.locator(".flash").filter(has_text=f"{name} was revoked").wait_for()
    assert "revoked" in row.inner_text()


def test_a_wall_display_sees_its_board_only_until_revoked(wall, tablet, browser,
                                                          display_context, live_server):
    """A display link opens the ICU board read-only; revoking it cuts the display off."""
    name = f"ICU wall {secrets.token_hex(3)}"
    link = display_add(wall, live_server, name)

    screen = display_context.new_page()
    screen.set_default_timeout(10_000)
    screen.goto(link)
    screen.wait_for_url(board_url(live_server))
    screen.locator("#board-grid .board-row").first.wait_for()
    assert screen.locator("#board-grid").is_visible()
    assert "#" not in screen.url
    screen.wait_for_function(CONNECTED)
    answer = screen.evaluate(JOINED)
    assert answer["joined"] == [f"board:{ICU_BOARD}"], answer
    # The display's socket hears its own board only.
    answer = screen.evaluate(f"""async () => (await import('{LIVE}')).socket.timeout(5000)
        .emitWithAck("join", {{rooms: ["board:2", "devices"]}})""")
    assert answer == {"joined": [], "refused": ["board:2", "devices"]}, answer
    uid = board_uids(screen)[0]

    other = display_context.new_page()
    response = other.goto(board_url(live_server, OTHER_BOARD))
    assert response.status == 403
    other.goto(f"{live_server}/patients/{uid}/sheet")
    assert urlsplit(other.url).path == "/login"
    response = other.goto(f"{live_server}{row_path(uid)}")
    assert response.status == 200 and f'id="row-{uid}"' in response.text()
    other.close()

    # The display is live: a task done on a tablet refreshes that patient's row.
    window = board_window(screen)
    changed = next((uid for uid in board_uids(screen)
                    if open_tasks(tablet, live_server, uid, window)), None)
    assert changed, "No ICU patient has an open task within the board's hours."
    task = open_tasks(tablet, live_server, changed, window)[0]
    before = screen.evaluate(ROW_HTML, f"row-{changed}")
    assert tablet.evaluate(COMPLETE_ALL, [task["uid"]]) == [200]
    screen.wait_for_function(ROW_CHANGED, arg=[f"row-{changed}", before],
                             timeout=ROW_CHANGE_MS)

    # Revoked: the server closes the socket and the screen stops showing patient data,
    # saying plainly that it needs a new link.
    display_revoke(wall, live_server, name)
    screen.wait_for_url("**/display", timeout=REVOKE_MS)
    assert screen.locator("#board-grid").count() == 0
    screen.locator("#display-status").filter(has_text="Ask a manager").wait_for()
    screen.reload()
    assert urlsplit(screen.url).path == "/display"

    again = browser.new_context(viewport=WALL)
    try:
        page = again.new_page()
        page.goto(link)
        status = page.locator("#display-status")
        status.filter(has_text="not valid").wait_for()
        assert urlsplit(page.url).path == "/display"
    finally:
        again.close()


def test_the_board_says_when_it_is_not_live(browser, live_server):
    """60 s without a connection: a banner with the last update; it goes once reconnected."""
    context = browser.new_context(viewport=WALL)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live_server, "manager", "manager-demo")
        page.clock.install()
        open_board(page, live_server)
        requests = RequestLog(page)
        banner = page.locator("#live-banner")
        assert banner.is_hidden()

        page.evaluate(DISCONNECT)
        assert not page.evaluate(CONNECTED)
        page.clock.fast_forward(30_000)
        page.wait_for_timeout(200)
        assert banner.is_hidden(), "the banner came before 60 s without a connection"
        page.clock.fast_forward(35_000)
        banner.wait_for(state="visible", timeout=2_000)
        assert BANNER_TEXT.match(banner.inner_text().strip()), banner.inner_text()

        mark = requests.mark()
        page.evaluate(f"() => import('{LIVE}').then(live => {{ live.socket.connect(); }})")
        page.wait_for_function(CONNECTED)
        page.clock.fast_forward(5_000)
        banner.wait_for(state="hidden", timeout=2_000)
        # Pokes sent while disconnected are lost: the whole board is fetched again.
        deadline = time.monotonic() + 3
        while ("GET", f"/boards/{ICU_BOARD}") not in requests.since(mark) \
                and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert ("GET", f"/boards/{ICU_BOARD}") in requests.since(mark)
    finally:
        context.close()


def clinic_zone(page, base_url: str) -> ZoneInfo:
    """The clinic's time zone, from the settings page (as a manager)."""
    page.goto(f"{base_url}/admin/settings")
    return ZoneInfo(page.locator("input[name=timezone]").input_value())


def far_zone(clinic: ZoneInfo) -> str:
    """A time zone whose clock reads differently from the clinic's, whatever the date."""
    now = datetime.now(UTC)
    for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu"):
        if ZoneInfo(name).utcoffset(now) != clinic.utcoffset(now):
            return name
    raise AssertionError("no time zone differs from the clinic's")


def test_the_not_live_banner_tells_the_clinics_time(browser, wall, live_server):
    """A display set to another time zone still says when it last updated in clinic time."""
    clinic = clinic_zone(wall, live_server)
    context = browser.new_context(viewport=WALL, timezone_id=far_zone(clinic))
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live_server, "manager", "manager-demo")
        start = datetime.now(UTC).replace(microsecond=0)
        page.clock.install(time=start)
        open_board(page, live_server)
        page.evaluate(DISCONNECT)
        page.clock.fast_forward(65_000)
        banner = page.locator("#live-banner")
        banner.wait_for(state="visible", timeout=2_000)
        shown = banner.inner_text().strip().rsplit(" ", 1)[-1]
        # The last update is the page load or the 60 s refresh of the grid since.
        expected = {(start + timedelta(seconds=s)).astimezone(clinic).strftime("%H:%M")
                    for s in range(0, 70)}
        assert shown in expected, f"{shown} is not clinic time ({clinic.key}): {expected}"
    finally:
        context.close()


def test_the_board_clock_tells_the_clinics_time(browser, wall, live_server):
    """The board's clock, ticking in the browser, shows clinic time on any display."""
    clinic = clinic_zone(wall, live_server)
    context = browser.new_context(viewport=WALL, timezone_id=far_zone(clinic))
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live_server, "manager", "manager-demo")
        before = datetime.now(UTC)
        open_board(page, live_server)
        page.wait_for_function("document.getElementById('board-clock').textContent.length > 0")
        page.wait_for_timeout(200)  # board.js has ticked by now
        shown = page.locator("#board-clock").inner_text().strip()
        expected = {(before + timedelta(seconds=s)).astimezone(clinic).strftime("%H:%M")
                    for s in range(0, 70)}
        assert shown in expected, f"{shown} is not clinic time ({clinic.key}): {expected}"
    finally:
        context.close()
