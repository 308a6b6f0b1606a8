"""Offline mode in a real browser: a provisioned tablet keeps working while the server is
gone, survives a reload, and every change reaches the server exactly once afterwards."""

import re
import time

import pytest

from .conftest import attention_list, own_server, wait_outbox
from .helpers import (
    complete_in_dialog,
    orders_stopped,
    outbox,
    patient_with_open_tasks,
    set_up_tablet,
    wait_cached,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the test stops and restarts it to make it unreachable."""
    yield from own_server(tmp_path_factory, "kiosk-offline")


def test_a_tablet_works_offline_and_syncs_everything_once(browser, server):
    context, page, device = set_up_tablet(browser, server)
    base = server.base_url
    uid, name = patient_with_open_tasks(server)
    sheet = f"/patients/{uid}/sheet"
    page.goto(base + sheet)
    wait_cached(page, sheet)
    wait_cached(page, "/patients/new")
    wait_cached(page, "/patients/")
    wait_cached(page, "/tablet/sheet-shell")
    wait_cached(page, "/static/js/sheet.js")

    # The network goes and the server with it.
    context.set_offline(True)
    server.stop()
    try:
        offline_part(page, context, server, device, uid, name)
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
        context.close()


def offline_part(page, context, server, device, uid, name):
    """Everything done while the server is gone, then the sync, then the checks."""
    base = server.base_url
    assert page.evaluate("navigator.onLine") is False
    page.reload()  # from the service worker's copy
    page.locator("h1", has_text=name).wait_for()

    open_tasks = page.locator("#sheet-grid a.task.overdue, #sheet-grid a.task.due, "
                              "#sheet-grid a.task.scheduled")
    first, second = open_tasks.nth(0), open_tasks.nth(1)
    done_uids = [first.get_attribute("data-task"), second.get_attribute("data-task")]
    for task_uid in done_uids:
        complete_in_dialog(page, page.locator(f'a.task[data-task="{task_uid}"]'))
        page.locator(f'a.task.done.waiting[data-task="{task_uid}"]').wait_for()

    page.locator(".note-form textarea").fill("Ate well while the server was down")
    page.get_by_role("button", name="Add note").click()
    page.locator(".note-list li.waiting", has_text="Ate well while the server").wait_for()

    # A patient made offline gets a usable sheet.
    page.goto(base + "/patients/new")
    page.locator("input[name=name]").fill("Offline Olive")
    page.locator("input[name=species]").fill("feline")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/tablet/sheet-shell#"))
    new_uid = page.url.split("#", 1)[1]
    page.locator("#shell-head h1", has_text="Offline Olive").wait_for()
    page.locator("summary", has_text="+ Order").click()
    page.locator(".shell-order input[name=name]").fill("Walk")
    page.locator(".shell-order select[name=kind]").select_option("task")
    page.locator(".shell-order input[name=every_hours]").fill("4")
    page.get_by_role("button", name="Create order").click()
    row = page.locator("#sheet-grid tr.pending", has_text="Walk")
    row.wait_for()
    complete_in_dialog(page, row.locator("a.task").first)
    row.locator("a.task.done.waiting").first.wait_for()
    shell_task = row.locator("a.task.done.waiting").first.get_attribute("data-task")

    # A reload offline keeps the page and the outbox.
    assert len(outbox(page)) == 6
    page.reload()
    page.locator("#shell-head h1", has_text="Offline Olive").wait_for()
    page.locator("#outbox-banner", has_text="Offline — 6 changes waiting").wait_for()
    page.locator(f'#sheet-grid a.task.done.waiting[data-task="{shell_task}"]').wait_for()

    # The patients list, from the tablet's copy, leads back to it.
    page.goto(base + "/patients/")
    pending = page.locator("ul.patient-list li.pending-patient", has_text="Offline Olive")
    pending.filter(has_text="waiting to sync").wait_for()
    pending.locator("a").click()
    page.locator("#shell-head h1", has_text="Offline Olive").wait_for()

    # Back online: everything is sent, and the shell gives way to the server's sheet.
    server.start()
    context.set_offline(False)
    wait_outbox(page, timeout=30_000)
    page.wait_for_url(re.compile(rf"/patients/{new_uid}/sheet"))
    page.locator("#outbox-banner").wait_for(state="hidden")
    assert attention_list(page) == []

    # Exactly once, as the server sees it.
    ops = server.query("SELECT name, status FROM sync_ops WHERE device_id = ? "
                       "AND status != 'duplicate'", int(device["id"][2:]))
    assert sorted(n for n, _ in ops) == sorted(["task.complete"] * 3 + [
        "note.add", "patient.create", "order.create"])
    assert {s for _, s in ops} == {"applied"}
    for task_uid in [*done_uids, shell_task]:
        assert server.query(
            "SELECT count(*) FROM task_completions c JOIN tasks t ON t.id = c.task_id "
            "WHERE t.uid = ?", task_uid) == [(1,)]
    assert server.query("SELECT count(*) FROM notes WHERE text = ?",
                        "Ate well while the server was down") == [(1,)]
    assert server.query("SELECT count(*), max(unallocated) FROM patients WHERE uid = ?",
                        new_uid) == [(1, 1)]
    import requests

    tasks = requests.get(f"{base}/api/patients/{new_uid}/tasks", timeout=10,
                         headers={"Authorization": f"Bearer {device['token']}"}).json()
    assert [t["status"] for t in tasks if t["uid"] == shell_task] == ["done"]


def test_a_lost_answer_is_sent_again_and_nothing_is_doubled(browser, server):
    # Playwright cannot route what a service worker's page sends; this case needs none.
    context, page, device = set_up_tablet(browser, server, service_workers="block")
    uid, _name = patient_with_open_tasks(server)
    page.goto(f"{server.base_url}/patients/{uid}/sheet")
    calls = []

    # Heartbeats with no ops pass; the first request carrying ops loses its answer.
    state = {"lost": False}

    def handler(route):
        body = route.request.post_data_json or {}
        calls.append(body)
        if body.get("ops") and not state["lost"]:
            state["lost"] = True
            route.fetch()
            route.abort()
            return
        route.continue_()

    page.route("**/api/sync", handler)
    task = page.locator("#sheet-grid a.task.overdue, #sheet-grid a.task.due, "
                        "#sheet-grid a.task.scheduled").first
    task_uid = task.get_attribute("data-task")
    complete_in_dialog(page, task)
    page.locator(f'a.task.done[data-task="{task_uid}"]').wait_for()
    wait_outbox(page, timeout=30_000)
    assert state["lost"], calls
    sent = [op["id"] for body in calls for op in body.get("ops", [])]
    assert len(sent) == 2 and sent[0] == sent[1]  # the same op, sent twice
    assert server.query(
        "SELECT count(*) FROM task_completions c JOIN tasks t ON t.id = c.task_id "
        "WHERE t.uid = ?", task_uid) == [(1,)]
    assert server.query("SELECT status FROM sync_ops WHERE device_id = ? ORDER BY id",
                        int(device["id"][2:])) in ([("applied",)], [("applied",), ("duplicate",)])
    page.locator(f'a.task.done[data-task="{task_uid}"]').wait_for()
    context.close()


def open_states(page):
    return page.locator("#sheet-grid a.task[data-due]:is(.overdue, .due, .scheduled)")


def test_notes_stay_on_the_sheet_after_a_task_and_a_sync(browser, server):
    """Staff saw the notes vanish from a tablet's sheet once a task was recorded or the
    tablet synced: the refresh after a sync must bring the notes back with the grid."""
    context, page, _device = set_up_tablet(browser, server)
    try:
        uid, _name = patient_with_open_tasks(server)
        page.goto(f"{server.base_url}/patients/{uid}/sheet")
        page.locator(".note-form textarea").fill("Drank a little water at noon")
        page.get_by_role("button", name="Add note").click()
        wait_outbox(page)
        notes = page.locator(".note-list li:not(.waiting)", has_text="Drank a little water")
        notes.wait_for()
        before = page.locator(".note-list li").count()
        task = open_states(page).first
        task_uid = task.get_attribute("data-task")
        complete_in_dialog(page, task)
        wait_outbox(page)
        page.locator(f'a.task.done:not(.waiting)[data-task="{task_uid}"]').wait_for()
        page.wait_for_function("() => !document.querySelector('#sheet-grid a.task.waiting')")
        assert notes.count() == 1
        assert page.locator(".note-list li").count() == before
        # A live refresh (another tablet's change) keeps them too.
        page.evaluate("() => document.dispatchEvent(new CustomEvent('live:refresh'))")
        page.wait_for_timeout(1500)
        assert notes.count() == 1 and page.locator("#notes h2").count() == 1
    finally:
        context.close()


def test_a_discharged_patients_sheet_offers_no_stop_or_give_now(browser, server):
    """Once discharged, no order of the patient can be stopped or given, on the tablet while
    the discharge waits, and on the server's sheet once it has arrived."""
    context, page, _device = set_up_tablet(browser, server)
    try:
        uid = server.query(
            "SELECT uid FROM patients p WHERE status = 'admitted' AND NOT EXISTS "
            "(SELECT 1 FROM anaesthesia_sheets s WHERE s.patient_id = p.id) AND NOT EXISTS "
            "(SELECT 1 FROM patient_forms f WHERE f.patient_id = p.id) AND NOT EXISTS "
            "(SELECT 1 FROM documents d WHERE d.patient_id = p.id) ORDER BY id")[0][0]
        orders_stopped(server, uid)  # no task left to become overdue and hold the discharge
        sheet = f"{server.base_url}/patients/{uid}/sheet"
        # An as-needed order, made through the order page: the sheet offers Give now and Stop.
        page.goto(f"{server.base_url}/patients/{uid}/orders/new")
        page.locator("input[name=name]").fill("Buprenorphine")
        page.locator("input[name=prn]").check()
        page.get_by_role("button", name="Create order").click()
        page.wait_for_url(sheet)
        wait_outbox(page)
        row = page.locator("#sheet-grid tr.order-row:not(.pending)", has_text="Buprenorphine")
        row.wait_for()
        row.get_by_role("button", name="Give now").wait_for()
        assert page.locator("#sheet-grid .stop-form:visible").count() > 0
        context.set_offline(True)
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Discharge").click()
        page.locator("#discharge-waiting").wait_for()
        assert page.locator("#sheet-grid .stop-form:visible, #sheet-grid .give-form:visible"
                            ).count() == 0
        context.set_offline(False)
        wait_outbox(page)
        page.locator(".patient-head .tag", has_text="Discharged").filter(
            has_not_text="waiting").wait_for()
        assert page.locator("#sheet-grid .stop-form, #sheet-grid .give-form").count() == 0
        fresh = page.request.get(sheet).text()
        grid = fresh[fresh.index('id="sheet-grid"'):].split("</section>", 1)[0]
        assert "Buprenorphine" in grid
        assert "give-form" not in grid and "stop-form" not in grid
    finally:
        context.close()


def test_the_patient_list_says_what_is_kept_offline_and_finds_patients_offline(browser, server):
    context, page, _device = set_up_tablet(browser, server)
    try:
        uid, name = patient_with_open_tasks(server)
        page.goto(f"{server.base_url}/patients/")
        wait_cached(page, f"/patients/{uid}/sheet")
        link = page.locator(f'a[href="/patients/{uid}/sheet"]')
        row = page.locator("#patient-list > li", has=link)
        row.locator(".kept-tag", has_text="Kept offline on this tablet").wait_for()
        # Every mark is what the service worker's cache holds, and nothing else. The worker
        # may still be keeping more pages: the list looks again (every 15 s) and catches up.
        deadline = time.monotonic() + 40
        while True:
            marks = page.evaluate("""() => Promise.all([...document.querySelectorAll(
                '#patient-list > li > a[href]')].map(a => caches.match(a.getAttribute('href'))
                .then(hit => [!!hit, !!a.querySelector('.kept-tag')])))""")
            if marks and all(cached == marked for cached, marked in marks):
                break
            assert time.monotonic() < deadline, marks
            time.sleep(0.5)
        # Offline, the search filters the list as it is typed.
        context.set_offline(True)
        page.reload()
        total = page.locator("#patient-list > li:not(.muted)").count()
        search = page.locator("#patient-search")
        search.fill(name.lower())
        visible = page.locator("#patient-list > li:visible")
        assert 1 <= visible.count() < total
        assert all(name.lower() in text.lower() for text in visible.all_inner_texts())
        search.fill("no such patient anywhere")
        page.locator("#patient-search-none").wait_for()
        assert visible.count() == 0
        search.fill("")
        assert page.locator("#patient-list > li:not(.muted):visible").count() == total
    finally:
        context.close()
