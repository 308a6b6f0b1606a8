"""Offline mode in a real browser: a provisioned tablet keeps working while the server is
gone, survives a reload, and every change reaches the server exactly once afterwards."""

import json
import re
import time

import pytest

from .conftest import TABLET, attention_list, next_seq, outbox_ops, own_server, sign_in, wait_outbox

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the test stops and restarts it to make it unreachable."""
    yield from own_server(tmp_path_factory, "kiosk-offline")


def provision(server) -> dict:
    """A new tablet: its id and token (the last line `kiosk devices add` prints)."""
    out = server.kiosk("devices", "add", "--name", "Ward tablet", "--colour", "blue",
                       "--number", "2")
    return json.loads(out.strip().splitlines()[-1])


def set_up_tablet(browser, server, username="vet", password="vet-demo-1", **options):
    """A tablet-sized page signed in, provisioned through /tablet#id.token."""
    device = provision(server)
    context = browser.new_context(viewport=TABLET, has_touch=True, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, server.base_url, username, password)
    page.goto(f"{server.base_url}/tablet#{device['id']}.{device['token']}")
    status = page.locator("#tablet-status")
    status.filter(has_text="This tablet is Blue #2").wait_for()
    assert "#" not in page.url  # the token left the address bar
    stored = [page.evaluate("localStorage['kiosk.deviceId']"), next_seq(page)]
    assert stored == [device["id"], 1]
    return context, page, device


def patient_with_open_tasks(server) -> tuple[str, str]:
    """An admitted patient with at least two open tasks due today (uid, name)."""
    rows = server.query(
        "SELECT p.uid, p.name FROM patients p JOIN tasks t ON t.patient_id = p.id "
        "WHERE p.status = 'admitted' AND t.status = 'scheduled' "
        "AND date(t.due_at) = date('now') GROUP BY p.id HAVING count(*) >= 3 ORDER BY p.id")
    assert rows, "the demo clinic has no patient with open tasks today"
    return rows[0]


def wait_cached(page, path: str, timeout: float = 30.0) -> None:
    """Until the service worker controls the page and keeps `path`."""
    try:
        page.wait_for_function("() => !!navigator.serviceWorker.controller")
    except Exception as exc:
        state = page.evaluate("navigator.serviceWorker.getRegistrations().then(rs => rs.map("
                              "r => [r.scope, !!r.installing, !!r.waiting, !!r.active]))")
        raise AssertionError(f"no service worker controls {page.url}: {state}") from exc
    deadline = time.monotonic() + timeout
    while not page.evaluate(
            "p => caches.keys().then(ks => Promise.all(ks.map("
            "k => caches.open(k).then(c => c.match(p))))).then(hits => hits.some(Boolean))",
            path):
        assert time.monotonic() < deadline, f"{path} was not kept by the service worker"
        time.sleep(0.2)


def outbox(page) -> list:
    return outbox_ops(page)


def complete_in_dialog(page, task) -> None:
    """Open a task's dialog and press Done (with a value when the order records one)."""
    page.wait_for_function("() => !!window.kioskSheet")
    task.click()
    dialog = page.locator("#task-dialog")
    dialog.locator(".complete-form").wait_for()
    value = dialog.locator(".complete-form input[name=value]")
    if value.count():
        value.fill("38.5")
    dialog.get_by_role("button", name="✓ Done").click()


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
    wait_cached(page, "/static/js/offline-sheet.js")

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
