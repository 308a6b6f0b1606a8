"""A planned maintenance window, as a clinic lives it, with nothing done by hand: a manager
plans it; the board and the tablet show the banner counting down; the window is under way
and the tablet fetches its pages fresh; the server is stopped; the tablet works on offline
(a billable task, an anaesthesia sheet finalised); the server is upgraded to a newer
migration and started again; the tablet syncs, the window ends by itself (settings back,
end-of-shift marks made) and the after-outage report shows the tablet synced, the sheet's
archived PDF and the charge captured offline."""

import re
import time
from datetime import datetime, timedelta

import pytest

from tests.support.migrations import newer_migrations, server_db_upgrade
from tests.support.server import KioskServer, serving

from .conftest import WALL, sign_in, wait_outbox
from .helpers import (
    complete_in_dialog,
    hourly_tasks,
    record_vitals,
    set_up_tablet,
    start_sheet,
    wait_cached,
    wait_for,
)

pytestmark = pytest.mark.e2e
OFFLINE_AFTER_S = 5


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own (the test stops, upgrades and restarts it); the banner is asked
    for every 3 s instead of every minute."""
    yield from serving(KioskServer(tmp_path_factory.mktemp("kiosk-maintenance"), env={
        "KIOSK_BILLING_OFFLINE_AFTER_S": str(OFFLINE_AFTER_S),
        "KIOSK_MAINTENANCE_POLL_S": "3"}))


def billable_task(server) -> tuple[str, str, str]:
    """An admitted, linked patient with an open billable task today: uid, name, task."""
    rows = server.query(
        "SELECT p.uid, p.name FROM patients p WHERE p.status = 'admitted' "
        "AND NOT p.unallocated AND NOT EXISTS (SELECT 1 FROM anaesthesia_sheets s "
        "WHERE s.patient_id = p.id) ORDER BY p.id LIMIT 1")
    assert rows, "the demo clinic has no admitted, linked patient without an anaesthesia sheet"
    uid, name = rows[0]
    return uid, name, hourly_tasks(server, uid, 1)[0]


def plan_window(server, manager) -> datetime:
    """Plan a window starting at the next whole minute at least 45 s away (a busy machine
    still shows the countdown before the start); its start."""
    start = (server.now() + timedelta(seconds=105)).replace(second=0)
    end = start + timedelta(hours=1)
    response = manager.post(f"{server.base_url}/maintenance/", data={
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"), "ends_at": end.strftime("%Y-%m-%dT%H:%M"),
        "message": "Upgrade to the new release"})
    assert response.status_code == 200 and "Maintenance planned" in response.text, \
        response.text[:2000]
    return start


def test_a_maintenance_window_with_an_upgrade_needs_nothing_done_by_hand(
        browser, server, tmp_path):
    base = server.base_url
    manager = server.signed_in("manager", "manager-demo")
    uid, name, task = billable_task(server)
    sheet = f"/patients/{uid}/sheet"
    anaesthesia = f"/patients/{uid}/anaesthesia"

    board_context = browser.new_context(viewport=WALL)
    board = board_context.new_page()
    board.set_default_timeout(15_000)
    sign_in(board, base, "manager", "manager-demo")
    board_id = server.query("SELECT id FROM boards ORDER BY id LIMIT 1")[0][0]
    board.goto(f"{base}/boards/{board_id}")
    assert board.locator("#maintenance-banner").is_hidden()

    context, tablet, _ = set_up_tablet(browser, server)
    try:
        tablet.goto(base + sheet)
        for path in (sheet, anaesthesia, "/tablet/anaesthesia-shell", "/static/js/sheet.js"):
            wait_cached(tablet, path)

        starts = plan_window(server, manager)
        # The board and the tablet show the banner counting down, without a reload.
        for page in (board, tablet):
            banner = page.locator("#maintenance-banner")
            banner.wait_for()
            banner.filter(has_text="Upgrade to the new release").wait_for()
            assert re.search(r"starts in \d+ (min|s)", banner.inner_text()), banner.inner_text()
        # The window is under way: the tablet fetched every page it keeps again.
        fresh = tablet.locator("#maintenance-banner [data-fresh]")
        fresh.filter(has_text="Pages on this tablet fetched fresh").wait_for(timeout=120_000)
        assert server.query("SELECT state FROM maintenance_windows") == [("under_way",)]

        # The window starts: the server is stopped, the tablet goes on offline.
        wait_for(lambda: server.now() > starts + timedelta(seconds=1),
                 "the window's start", timeout=120)
        context.set_offline(True)
        server.stop()
        offline_work(tablet, base, sheet, anaesthesia, name, task)

        # The upgrade: a newer migration on the live database, then the new server.
        upgraded = server_db_upgrade(server, newer_migrations(tmp_path))
        assert "f18c0a7e5b01" in upgraded
        server.start()
        context.set_offline(False)
        wait_outbox(tablet, timeout=45_000)
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
        context.close()

    # The window ended by itself once the server was back: settings back, two marks.
    wait_for(lambda: server.query(
        "SELECT state FROM maintenance_windows WHERE state = 'ended'"),
        "the window to end", timeout=60)
    marks = server.query("SELECT note FROM shift_marks WHERE note LIKE 'Maintenance window%' "
                         "ORDER BY at")
    assert marks == [("Maintenance window starts",), ("Maintenance window ends",)]
    assert server.query("SELECT paused FROM billing_connectors") in ([], [(0,)])
    # The board's banner goes by itself.
    board.locator("#maintenance-banner").wait_for(state="hidden", timeout=30_000)

    # Each offline action arrived once: the charge, flagged offline; the sheet's PDF archived.
    charges = server.query("SELECT offline FROM charges WHERE key = ?", f"task:{task}")
    assert charges == [(1,)]
    wait_for(lambda: server.query(
        "SELECT d.status FROM documents d JOIN patients p ON p.id = d.patient_id "
        "WHERE p.uid = ? AND d.kind = 'anaesthesia' AND d.status = 'ready'", uid),
        "the anaesthesia sheet's PDF to be archived", timeout=60)
    outage = server.query("SELECT uid, ended_at FROM outages WHERE cause = 'window'")
    assert len(outage) == 1 and outage[0][1] is not None

    # The after-outage report, built by itself: the tablet synced, the sheet's PDF, the
    # offline charge; the manager's pages point at it.
    board.goto(f"{base}/patients/")
    board.locator(".outage-banner a", has_text="see what to check").click()
    board.wait_for_url(re.compile(f"/outages/{outage[0][0]}$"))
    report = board.locator("#outage-devices")
    report.locator(".sync-verdict", has_text="All synced").wait_for(timeout=90_000)
    assert "Blue #2" in report.inner_text()
    papers = board.locator("#outage-papers")
    papers.locator("a", has_text=re.compile("PDF")).first.wait_for(timeout=60_000)
    assert name in papers.inner_text()
    billing = board.locator("#outage-billing").inner_text()
    assert re.search(r"\b1 captured offline on the tablets", billing), billing
    board_context.close()


def offline_work(tablet, base, sheet, anaesthesia, name, task) -> None:
    """With the server stopped: a billable task done, an anaesthesia sheet started,
    recorded on and finalised — all from the tablet's kept pages."""
    tablet.goto(base + sheet)  # from the service worker's copy
    tablet.locator("h1", has_text=name).wait_for()
    banner = tablet.locator("#maintenance-banner")
    banner.filter(has_text="This tablet keeps working").wait_for()
    complete_in_dialog(tablet, tablet.locator(f'a.task[data-task="{task}"]'))
    tablet.locator(f'a.task.done.waiting[data-task="{task}"]').wait_for()
    tablet.goto(base + anaesthesia)
    tablet.locator("h1", has_text=name).wait_for()
    start_sheet(tablet, "Dental, extractions", "II")
    record_vitals(tablet, hr=84, spo2=97)
    tablet.once("dialog", lambda dialog: dialog.accept())
    tablet.get_by_role("button", name="Finalise sheet").click()
    tablet.locator("#sheet-status", has_text="finalised — PDF when synced").wait_for()
    time.sleep(OFFLINE_AFTER_S + 1)  # longer than "offline" means for billing
