"""The outbox's harder cases in a real browser: a full storage, a revoked tablet, two tabs."""

import uuid

import pytest

from .conftest import (
    attention_list,
    flush,
    next_seq,
    outbox_snapshot,
    own_server,
    set_next_seq,
    wait_outbox,
)
from .helpers import (
    complete_in_dialog,
    orders_stopped,
    outbox,
    patient_with_open_tasks,
    set_up_tablet,
    wait_cached,
)

pytestmark = pytest.mark.e2e

OPEN_TASKS = "#sheet-grid a.task.overdue, #sheet-grid a.task.due, #sheet-grid a.task.scheduled"
# A full disk: the browser's IndexedDB refuses every write with QuotaExceededError, as it
# does when the tablet's storage is full (a browser under test cannot be given a real
# full disk: its quota for a test profile is gigabytes).
FILL = """() => {
  const proto = IDBObjectStore.prototype;
  window.__storageFull = true;
  if (!proto.__fillable) {
    proto.__fillable = true;
    for (const name of ["add", "put"]) {
      const original = proto[name];
      proto[name] = function (...args) {
        if (window.__storageFull) {
          throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
        }
        return original.apply(this, args);
      };
    }
  }
  return true;
}"""
EMPTY = "() => { window.__storageFull = false; }"


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of this module's own."""
    yield from own_server(tmp_path_factory, "kiosk-outbox")


OPEN_STATES = "#sheet-grid a.task[data-due]:is(.overdue, .due, .scheduled)"


def open_sheet(browser, server):
    context, page, device = set_up_tablet(browser, server)
    uid, _name = patient_with_open_tasks(server)
    sheet = f"/patients/{uid}/sheet"
    page.goto(server.base_url + sheet)
    wait_cached(page, sheet)
    return context, page, device, sheet


def completions(server, task_uid: str) -> int:
    return server.query("SELECT count(*) FROM task_completions c JOIN tasks t "
                        "ON t.id = c.task_id WHERE t.uid = ?", task_uid)[0][0]


def test_a_full_storage_is_said_at_once_and_the_change_is_not_pretended(browser, server):
    context, page, _device, _sheet = open_sheet(browser, server)
    try:
        context.set_offline(True)
        task = page.locator(OPEN_TASKS).first
        task_uid = task.get_attribute("data-task")
        assert page.evaluate(FILL)
        complete_in_dialog(page, task)
        alert = page.locator("#outbox-alert")
        alert.filter(has_text="storage is full").wait_for()
        assert "NOT saved" in alert.inner_text()
        assert outbox(page) == []  # nothing half-written
        assert page.locator(f'a.task.done[data-task="{task_uid}"]').count() == 0
        # Room again: the same action is kept, shown waiting, and sent once online.
        page.evaluate(EMPTY)
        alert.get_by_role("button", name="OK").click()
        page.keyboard.press("Escape")
        complete_in_dialog(page, page.locator(f'a.task[data-task="{task_uid}"]'))
        page.locator(f'a.task.done.waiting[data-task="{task_uid}"]').wait_for()
        assert len(outbox(page)) == 1
        context.set_offline(False)
        wait_outbox(page, timeout=30_000)
        assert completions(server, task_uid) == 1
    finally:
        context.close()


def test_a_revoked_tablet_keeps_its_changes_and_tells_the_person(browser, server):
    context, page, device, _sheet = open_sheet(browser, server)
    try:
        server.kiosk("devices", "revoke", device["id"])
        task = page.locator(OPEN_TASKS).first
        task_uid = task.get_attribute("data-task")
        complete_in_dialog(page, task)
        banner = page.locator("#outbox-banner")
        banner.filter(has_text="This tablet was revoked — ask a manager").wait_for()
        assert "1 change kept on this tablet" in banner.inner_text()
        assert [op["args"]["task"] for op in outbox(page)] == [task_uid]
        assert completions(server, task_uid) == 0
        # Locking (which also ends the signed-in session) never touches the outbox. The
        # server closes the ended session's live connection, and the page reloads itself
        # to show what the server says now: wait for that before reading the page.
        page.evaluate("() => { window.beforeLock = true; }")
        page.locator("#lock-now").click()
        page.wait_for_function("() => !window.beforeLock && document.readyState === 'complete'")
        page.locator("#lock-screen h1", has_text="Locked").wait_for()
        assert [op["args"]["task"] for op in outbox(page)] == [task_uid]
        page.reload()  # the server's session has ended; the tablet is still locked
        page.locator("#lock-screen h1", has_text="Locked").wait_for()
        assert [op["args"]["task"] for op in outbox(page)] == [task_uid]
    finally:
        context.close()


def test_two_tabs_share_one_outbox_and_each_change_arrives_once(browser, server):
    context, first, device, sheet = open_sheet(browser, server)
    try:
        second = context.new_page()
        second.goto(server.base_url + sheet)
        context.set_offline(True)
        tasks = first.locator(OPEN_TASKS)
        uids = [tasks.nth(0).get_attribute("data-task"), tasks.nth(1).get_attribute("data-task")]
        complete_in_dialog(first, first.locator(f'a.task[data-task="{uids[0]}"]'))
        complete_in_dialog(second, second.locator(f'a.task[data-task="{uids[1]}"]'))
        for page in (first, second):  # each tab shows both, waiting
            for uid in uids:
                page.locator(f'a.task.done.waiting[data-task="{uid}"]').wait_for()
        assert sorted(op["seq"] for op in outbox(first)) == [1, 2]
        context.set_offline(False)
        for page in (first, second):
            flush(page)
        wait_outbox(first, timeout=30_000)
        assert [completions(server, uid) for uid in uids] == [1, 1]
        statuses = server.query("SELECT seq, status FROM sync_ops WHERE device_id = ? "
                                "ORDER BY seq, id", int(device["id"][2:]))
        assert [s for s in statuses if s[1] != "duplicate"] == [(1, "applied"), (2, "applied")]
        assert server.query("SELECT count(*) FROM device_events WHERE device_id = ? "
                            "AND kind IN ('gap', 'stale_seq')", int(device["id"][2:])) == [(0,)]
    finally:
        context.close()


# Holds the outbox's send lock as a send under way does, until window.__releaseSend().
HOLD_SEND = """() => new Promise((held) => navigator.locks.request("kiosk-flush",
  () => { held(true); return new Promise((release) => { window.__releaseSend = release; }); }))"""


def test_a_change_made_while_a_send_is_under_way_is_sent_when_it_ends(browser, server):
    """A send asked for while another holds the outbox (the network came back as the last
    offline try was ending) waits its turn: the change goes out when that send ends, not a
    minute later at the heartbeat."""
    context, page, _device, _sheet = open_sheet(browser, server)
    try:
        assert page.evaluate(HOLD_SEND) is True
        task = page.locator(OPEN_TASKS).first
        task_uid = task.get_attribute("data-task")
        complete_in_dialog(page, task)
        page.locator(f'a.task.done.waiting[data-task="{task_uid}"]').wait_for()
        assert [op["name"] for op in outbox(page)] == ["task.complete"]
        assert completions(server, task_uid) == 0  # nothing went out while the lock was held
        page.evaluate("() => window.__releaseSend()")
        wait_outbox(page, timeout=10_000)  # the heartbeat would only try again after 60 s
        assert completions(server, task_uid) == 1
    finally:
        context.close()


def test_a_counter_that_jumped_is_renumbered_after_the_servers_409(browser, server):
    context, page, device, _sheet = open_sheet(browser, server)
    try:
        context.set_offline(True)
        set_next_seq(page, 7)  # e.g. a restore
        task = page.locator(OPEN_TASKS).first
        task_uid = task.get_attribute("data-task")
        complete_in_dialog(page, task)
        page.locator(f'a.task.done.waiting[data-task="{task_uid}"]').wait_for()
        assert [op["seq"] for op in outbox(page)] == [7]
        context.set_offline(False)
        flush(page)
        wait_outbox(page, timeout=30_000)
        assert completions(server, task_uid) == 1
        assert server.query("SELECT seq, status FROM sync_ops WHERE device_id = ?",
                            int(device["id"][2:])) == [(1, "applied")]
        assert next_seq(page) == 2
    finally:
        context.close()


def test_a_request_too_large_for_the_way_in_is_split(browser, server):
    """A proxy in front of the server may refuse what the server would take (413)."""
    context, page, device, _sheet = open_sheet(browser, server)
    sizes = []

    def refuse_big(route):
        ops = (route.request.post_data_json or {}).get("ops", [])
        sizes.append(len(ops))
        if len(ops) > 1:
            route.fulfill(status=413, content_type="application/json",
                          body='{"error": "too_large", "message": "Too large."}')
        else:
            route.continue_()

    try:
        context.set_offline(True)
        tasks = page.locator(OPEN_TASKS)
        uids = [tasks.nth(i).get_attribute("data-task") for i in range(3)]
        for uid in uids:
            complete_in_dialog(page, page.locator(f'a.task[data-task="{uid}"]'))
            page.locator(f'a.task.done.waiting[data-task="{uid}"]').wait_for()
        page.route("**/api/sync", refuse_big)
        context.set_offline(False)
        flush(page)
        wait_outbox(page, timeout=30_000)
        assert 3 in sizes and sizes.count(1) >= 3
        assert [completions(server, uid) for uid in uids] == [1, 1, 1]
    finally:
        context.close()


def test_a_conflict_stays_in_needs_attention_until_dismissed(browser, server):
    """Another tablet completed the task first: this tablet's completion is recorded as a
    conflict, and the person sees it until they dismiss it."""
    import json
    from datetime import UTC, datetime

    import requests

    from .helpers import provision

    context, page, _device, _sheet = open_sheet(browser, server)
    try:
        context.set_offline(True)
        task = page.locator(OPEN_TASKS).first
        task_uid = task.get_attribute("data-task")
        complete_in_dialog(page, task)
        page.locator(f'a.task.done.waiting[data-task="{task_uid}"]').wait_for()
        other = provision(server)
        user = server.query("SELECT id FROM users WHERE username = 'tech'")[0][0]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        answer = requests.post(f"{server.base_url}/api/sync", timeout=10, data=json.dumps({
            "device": other["id"], "sent_at": now, "ops": [{
                "id": "00000000-0000-4000-8000-000000000001", "seq": 1, "name": "task.complete",
                "args": {"task": task_uid, "value": "38.5"}, "at": now, "user": f"u_{user}"}]}),
            headers={"Authorization": f"Bearer {other['token']}",
                     "Content-Type": "application/json"})
        assert answer.json()["results"][0]["status"] == "applied"
        context.set_offline(False)
        flush(page)
        item = page.locator("#outbox-attention li.attention-conflict")
        item.filter(has_text="Recorded with a conflict: task.complete").wait_for()
        assert "already done" in item.inner_text()
        page.reload()  # it survives a reload, like the outbox
        item.wait_for()
        item.get_by_role("button", name="Dismiss").click()
        page.locator("#outbox-attention").wait_for(state="hidden")
        assert attention_list(page) == []
        assert completions(server, task_uid) == 2  # both kept: a clinical fact is never lost
    finally:
        context.close()


def test_offline_a_page_not_kept_says_so_and_colours_follow_the_clock(browser, server):
    """Offline, the sheet's colours follow the tablet's clock both ways. The page's clock is
    set from the task's own due time, so the test holds at any time of the real day."""
    context, page, _device, sheet = open_sheet(browser, server)
    try:
        last = page.locator(OPEN_STATES).last
        task_uid = last.get_attribute("data-task")
        due = page.evaluate("uid => Date.parse(document.querySelector("
                            "`a.task[data-task='${uid}']`).dataset.due)", task_uid)
        context.set_offline(True)
        page.goto(server.base_url + "/admin/audit")
        page.locator("h1", has_text="This page is not saved on this tablet").wait_for()
        page.clock.install(time=(due - 2 * 3600 * 1000) / 1000)  # two hours before due
        page.goto(server.base_url + sheet)
        page.wait_for_function("() => document.documentElement.dataset.sheet === 'ready'")
        page.locator(f'a.task.scheduled[data-task="{task_uid}"]').wait_for()
        page.clock.fast_forward(5 * 3600 * 1000)  # three hours past due
        page.locator(f'a.task.overdue[data-task="{task_uid}"]').wait_for()
    finally:
        context.close()


def test_a_discharge_once_sent_gives_way_to_the_servers_page(browser, server):
    """The discharge changes the patient's head and buttons, not only the grid: once the
    server has it, the page says "Discharged" and offers no second discharge."""
    context, page, _device, _sheet = open_sheet(browser, server)
    try:
        uid, name = server.query(
            "SELECT uid, name FROM patients p WHERE status = 'admitted' AND NOT EXISTS "
            "(SELECT 1 FROM anaesthesia_sheets s WHERE s.patient_id = p.id) AND NOT EXISTS "
            "(SELECT 1 FROM patient_forms f WHERE f.patient_id = p.id) AND NOT EXISTS "
            "(SELECT 1 FROM documents d WHERE d.patient_id = p.id) ORDER BY id DESC")[0]
        orders_stopped(server, uid)  # no task left to become overdue and hold the discharge
        sheet = f"/patients/{uid}/sheet"
        page.goto(server.base_url + sheet)
        wait_cached(page, sheet)
        context.set_offline(True)
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Discharge").click()
        page.locator("#discharge-waiting", has_text="Discharged — waiting to sync").wait_for()
        context.set_offline(False)
        wait_outbox(page, timeout=30_000)
        page.locator(".patient-head .tag", has_text="Discharged").filter(
            has_not_text="waiting").wait_for()
        assert page.locator("#discharge-waiting").count() == 0
        assert page.get_by_role("button", name="Discharge").count() == 0
        assert server.query("SELECT status FROM patients WHERE uid = ?",
                            uid) == [("discharged",)]
        assert page.locator("h1", has_text=name).count() == 1
    finally:
        context.close()


def test_a_tablet_upgraded_mid_outage_keeps_its_localstorage_outbox(browser, server):
    """The outbox used to live in localStorage: on its first start the new client moves the
    waiting ops, the "needs attention" list and the counter into IndexedDB in one go and
    removes the old keys; the ops are then sent as before, once each."""

    context, page, device, sheet = open_sheet(browser, server)
    try:
        context.set_offline(True)
        tasks = page.locator(OPEN_TASKS)
        uids = [tasks.nth(0).get_attribute("data-task"), tasks.nth(1).get_attribute("data-task")]
        user = page.evaluate("document.body.dataset.user")
        # An observation is recorded with its value, as the old client sent it.
        values = {"number": {"value": "38.5"}, "text": {"value": "ok"}}
        args = [{"task": uid, **values.get(page.evaluate(
            "u => document.querySelector(`a.task[data-task='${u}']`).closest('tr')"
            ".dataset.valueType", uid), {})} for uid in uids]
        now = page.evaluate("new Date().toISOString().slice(0, 19) + 'Z'")
        legacy_ops = [{"id": str(uuid.uuid4()), "seq": i,
                       "name": "task.complete", "args": a, "at": now, "user": user}
                      for i, a in enumerate(args, start=1)]
        note = {"id": "00000000-0000-4000-8000-0000000000aa", "seq": 0, "name": "note.add",
                "status": "rejected", "code": "not_permitted", "message": "Not allowed."}
        page.evaluate("""([ops, notes]) => {
          localStorage.setItem('kiosk.outbox', JSON.stringify(ops));
          localStorage.setItem('kiosk.attention', JSON.stringify(notes));
          localStorage.setItem('kiosk.nextSeq', '3');
        }""", [legacy_ops, [note]])
        page.reload()  # offline, the first start of the new client on this tablet
        page.locator("#outbox-banner", has_text="Offline — 2 changes waiting").wait_for()
        kept = outbox_snapshot(page)
        assert [{k: op[k] for k in legacy_ops[0]} for op in kept["ops"]] == legacy_ops
        assert kept["attention"] == [note] and kept["nextSeq"] == 3
        assert page.evaluate("['kiosk.outbox', 'kiosk.attention', 'kiosk.nextSeq']"
                             ".map(k => localStorage.getItem(k))") == [None, None, None]
        page.locator("#outbox-attention li", has_text="Not allowed.").wait_for()
        for uid in uids:
            page.locator(f'a.task.done.waiting[data-task="{uid}"]').wait_for()
        context.set_offline(False)
        flush(page)
        wait_outbox(page)
        assert [completions(server, uid) for uid in uids] == [1, 1]
        assert server.query("SELECT seq, status FROM sync_ops WHERE device_id = ? ORDER BY seq",
                            int(device["id"][2:])) == [(1, "applied"), (2, "applied")]
        assert next_seq(page) == 3
    finally:
        context.close()
