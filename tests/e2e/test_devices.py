"""Devices in a real browser: a manager adds a tablet and pairs it with a code, gives it a
ward; the tablet keeps that ward's sheets (and no others), works offline, locks and
unlocks with a PIN offline, and when it is back the sync dashboard goes green by itself."""

import re

import pytest

from kiosk.staff.levels import level_name

from .conftest import LIVE_CONNECTED, LIVE_JOINED, TABLET, WALL, own_server, sign_in, wait_outbox
from .helpers import complete_in_dialog, outbox, unlock, wait_cached

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the test stops it to make the tablet go offline."""
    yield from own_server(tmp_path_factory, "kiosk-devices")


def is_cached(page, path: str) -> bool:
    return page.evaluate(
        "p => caches.keys().then(ks => Promise.all(ks.map("
        "k => caches.open(k).then(c => c.match(p))))).then(hits => hits.some(Boolean))", path)


def add_tablet(manager, base: str) -> str:
    """Add a tablet on the devices page; the pairing code it shows."""
    manager.goto(base + "/devices/")
    form = manager.locator("#add-device")
    form.locator("input[name=name]").fill("ICU tablet")
    form.locator("label.colour-option", has_text="Green").click()
    form.locator("input[name=number]").fill("4")
    form.get_by_role("button", name="Add and get a pairing code").click()
    code = manager.locator("#pairing-code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert manager.locator(".qr svg").count() == 1
    return code


def test_pair_assign_work_offline_with_a_pin_and_see_the_dashboard_go_green(browser, server):
    base = server.base_url
    desk = browser.new_context(viewport=WALL)
    manager = desk.new_page()
    manager.set_default_timeout(15_000)
    sign_in(manager, base, "manager", "manager-demo")
    code = add_tablet(manager, base)

    tablet_context = browser.new_context(viewport=TABLET, has_touch=True)
    tablet = tablet_context.new_page()
    tablet.set_default_timeout(15_000)
    try:
        # A wrong code says so and pairs nothing; the right one pairs this browser.
        tablet.goto(base + "/pair")
        tablet.locator("#pair-code").fill("ZZZZ-ZZZZ")
        tablet.get_by_role("button", name="Pair").click()
        tablet.locator("#pair-status", has_text="not right").wait_for()
        assert tablet.evaluate("localStorage['kiosk.deviceToken'] || null") is None
        tablet.locator("#pair-code").fill(code.lower())
        tablet.get_by_role("button", name="Pair").click()
        tablet.locator("#tablet-status", has_text="This tablet is Green #4").wait_for()
        device_id = tablet.evaluate("localStorage['kiosk.deviceId']")
        # Nobody has unlocked it yet.
        tablet.locator("#lock-screen h1", has_text="Locked — Green #4").wait_for()

        # The manager gives it the ICU; the assignment page says so.
        manager.goto(base + "/devices/assignments")
        card = manager.locator(".assignment-card", has_text="Green #4")
        card.locator("select[name=ward]").select_option(label="ICU")
        card.get_by_role("button", name="Set ward").click()
        card.locator(".assignment-what", has_text="Ward: ICU").wait_for()
        icu = server.query("SELECT p.uid, p.name FROM patients p JOIN wards w ON "
                           "w.id = p.ward_id WHERE w.name = 'ICU' AND p.status = 'admitted'")
        other, stranger = [row[0] for row in server.query(
            "SELECT p.uid FROM patients p JOIN wards w ON w.id = p.ward_id "
            "WHERE w.name != 'ICU' AND p.status = 'admitted' ORDER BY p.id LIMIT 2")]
        other_name = server.query("SELECT name FROM patients WHERE uid = ?", other)[0][0]
        assert len(icu) >= 3
        for _uid, name in icu:
            card.locator(".carried li", has_text=name).wait_for()

        # Priya unlocks with her PIN; the tablet keeps its ward's sheets and only those.
        unlock(tablet, "Priya Tech", "3333")
        tablet.locator("#lock-person", has_text="Priya Tech").wait_for()
        tablet.goto(base + "/patients/")
        for uid, _name in icu:
            wait_cached(tablet, f"/patients/{uid}/sheet")
        icu_board = server.query("SELECT b.id FROM boards b JOIN wards w ON w.id = b.ward_id "
                                 "WHERE w.name = 'ICU'")[0][0]
        wait_cached(tablet, f"/boards/{icu_board}")
        assert not is_cached(tablet, f"/patients/{other}/sheet")

        # The manager picks one more patient for it: the tablet, open on the patients
        # list, keeps that sheet too without anyone touching it.
        card.locator("select[name=patient]").select_option(value=other)
        card.get_by_role("button", name="Add patient").click()
        card.locator(".carried li", has_text=other_name).wait_for()
        wait_cached(tablet, f"/patients/{other}/sheet", timeout=30)
        assert not is_cached(tablet, f"/patients/{stranger}/sheet")

        # The network and the server go.
        tablet_context.set_offline(True)
        server.stop()
        for uid, name in icu:
            tablet.goto(f"{base}/patients/{uid}/sheet")
            tablet.locator("h1", has_text=name).wait_for()
        tablet.goto(f"{base}/boards/{icu_board}")
        tablet.locator(".board-row", has_text=icu[0][1]).wait_for()
        tablet.goto(f"{base}/patients/{other}/sheet")
        tablet.locator("h1", has_text=other_name).wait_for()
        tablet.goto(f"{base}/patients/{stranger}/sheet")
        tablet.locator("h1", has_text="not saved on this tablet").wait_for()

        # Locked, then unlocked offline: a PIN of the wrong length is refused before any
        # check; a wrong one is counted; the right one unlocks.
        uid, name = icu[0]
        tablet.goto(f"{base}/patients/{uid}/sheet")
        tablet.locator("#lock-now").click()
        screen = tablet.locator("#lock-screen")
        screen.get_by_role("button", name="Leo Assistant").click()
        screen.locator("input[name=pin]").fill("22")
        screen.get_by_role("button", name="Unlock").click()
        screen.locator(".field-error", has_text="A PIN is 4 to 6 digits.").wait_for()
        screen.locator("input[name=pin]").fill("9999")
        screen.get_by_role("button", name="Unlock").click()
        screen.locator(".field-error", has_text="Wrong PIN (1 of 5 tries)").wait_for()
        # Level 5 types 6 digits: 4 are refused before any check and never counted. Five
        # wrong PINs lock Dr Okafor out on this tablet; Leo can still unlock it.
        screen.get_by_role("button", name="Back").click()
        screen.get_by_role("button", name="Dr Sam Okafor").click()
        screen.locator("input[name=pin]").fill("5555")
        screen.get_by_role("button", name="Unlock").click()
        # The level by its name, as the staff pages say it, not a bare number.
        said = screen.locator(".field-error",
                              has_text=f"{level_name(5)} unlocks with a 6-digit PIN")
        said.wait_for()
        assert "Level 5" not in said.inner_text() and not said.inner_text().startswith("5")
        for tries in range(1, 6):
            screen.locator("input[name=pin]").fill("123456")
            screen.get_by_role("button", name="Unlock").click()
            said = f"({tries} of 5 tries)" if tries < 5 else "Dr Sam Okafor is locked out"
            screen.locator(".field-error", has_text=said).wait_for()
        lock = "import('/static/js/lock.js')"  # the page's own lock module
        too_late = tablet.evaluate(lock + ".then(m => m.unlock('u_2', '555555'))")  # right PIN
        assert "Dr Sam Okafor is locked out on this tablet until" in too_late
        # For a minute, as on the server; the next wrong PIN after it doubles the wait.
        wait = tablet.evaluate(
            "JSON.parse(localStorage.getItem('kiosk.pinFailures'))['u_2'].until - Date.now()")
        assert 50_000 < wait <= 60_000
        assert tablet.evaluate(lock + ".then(m => m.person())") is None and screen.is_visible()
        screen.get_by_role("button", name="Back").click()
        screen.get_by_role("button", name="Leo Assistant").click()
        screen.locator("input[name=pin]").fill("2222")
        screen.get_by_role("button", name="Unlock").click()
        screen.wait_for(state="hidden")
        tablet.locator("#lock-person", has_text="Leo Assistant").wait_for()
        # Level 2: no order buttons for Leo.
        assert tablet.locator(".sheet-actions .manage").is_hidden()

        task = tablet.locator("#sheet-grid a.task.overdue, #sheet-grid a.task.due, "
                              "#sheet-grid a.task.scheduled").first
        task_uid = task.get_attribute("data-task")
        complete_in_dialog(tablet, task)
        tablet.locator(f'a.task.done.waiting[data-task="{task_uid}"]').wait_for()
        waiting = outbox(tablet)
        assert [(op["name"], op["user"]) for op in waiting] == [("task.complete", "u_4")]

        # The manager's dashboard, meanwhile, shows work waiting once the server is back.
        server.start()
        manager.goto(base + "/devices/sync")
        verdict = manager.locator(".sync-verdict")
        verdict.wait_for()
        # Its connection is in the devices room before the tablet syncs (else the poke
        # finds nobody and only the page's 30 s poll would turn it green).
        manager.wait_for_function(LIVE_CONNECTED, timeout=15_000)
        manager.evaluate(LIVE_JOINED)
        tablet_context.set_offline(False)
        wait_outbox(tablet, timeout=30_000)
        # Live: the dashboard turns green without a reload.
        manager.locator(".sync-verdict.ok", has_text="All 1 device synced").wait_for(
            timeout=30_000)
        assert manager.locator(f"#sync-{device_id[2:]}").get_attribute("data-state") == "ok"

        # Exactly once, by Leo, from this tablet.
        rows = server.query(
            "SELECT c.user_id, c.device_id FROM task_completions c JOIN tasks t "
            "ON t.id = c.task_id WHERE t.uid = ?", task_uid)
        assert rows == [(4, int(device_id[2:]))]
        assert server.query("SELECT count(*) FROM sync_ops WHERE device_id = ? AND "
                            "status = 'applied'", int(device_id[2:])) == [(1,)]
        # The sheet and the board say which tablet carries the patient.
        manager.goto(f"{base}/patients/{uid}/sheet")
        manager.locator(".carrier", has_text="Green #4").wait_for()
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
        tablet_context.close()
        desk.close()
