"""Helpers the browser tests share: setting up a tablet, reading its outbox, recording on
the anaesthesia sheet, filling forms."""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from zoneinfo import ZoneInfo

import requests

from .conftest import TABLET, next_seq, outbox_ops, sign_in, wait_outbox


# ---- A tablet, its pages kept offline and its outbox
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
    """An admitted patient with open tasks due today, whatever the hour (uid, name): the
    first one, given an hourly order from the start of the day."""
    rows = server.query("SELECT uid, name FROM patients WHERE status = 'admitted' "
                        "ORDER BY id LIMIT 1")
    assert rows, "the demo clinic has no admitted patient"
    uid, name = rows[0]
    hourly_tasks(server, uid, 3, billable=False)
    return uid, name


def stored_time(value: str | datetime) -> datetime:
    """A time as the server's database holds it (naive UTC, or text on SQLite) or as SYNC.md
    sends it ("...Z"): aware, in UTC."""
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hourly_tasks(server, patient_uid: str, count: int, billable: bool = True) -> list[str]:
    """Give the patient an order (billable unless told) every hour from the start of the
    clinic's day on the server's clock; its first `count` open tasks of that day, by time.
    The demo's own tasks thin out as its day goes on (most past ones are done): these are
    there whatever the hour a test runs."""
    zone = ZoneInfo(server.env["KIOSK_TIMEZONE"])
    day = server.now().astimezone(zone).date()
    vet = server.signed_in("vet", "vet-demo-1")
    order = {"name": "Hourly comfort check", "kind": "procedure", "every_hours": "1",
             "start": f"{day.isoformat()}T00:00"}
    if billable:
        order |= {"billable_code": "PROC-CHECK", "price": "9.80"}
    response = vet.post(f"{server.base_url}/patients/{patient_uid}/orders/new", timeout=10,
                        data=order)
    assert response.status_code == 200 and response.history, response.text[:500]
    start = datetime.combine(day, day_time(), zone)
    end = datetime.combine(day + timedelta(days=1), day_time(), zone)
    rows = server.query(
        "SELECT t.uid, t.due_at FROM tasks t JOIN orders o ON o.id = t.order_id "
        "WHERE o.id = (SELECT max(o2.id) FROM orders o2 JOIN patients p ON p.id = "
        "o2.patient_id WHERE p.uid = ?) AND t.status = 'scheduled'", patient_uid)
    tasks = sorted((stored_time(at), uid) for uid, at in rows if start <= stored_time(at) < end)
    assert len(tasks) >= count, tasks
    return [uid for _, uid in tasks[:count]]


def orders_stopped(server, patient_uid: str) -> None:
    """Stop every active order of the patient, as the demo vet does before sending it home:
    its open tasks are cancelled, so none is overdue (which would hold the discharge)."""
    vet = server.signed_in("vet", "vet-demo-1")
    for (order_uid,) in server.query(
            "SELECT o.uid FROM orders o JOIN patients p ON p.id = o.patient_id "
            "WHERE p.uid = ? AND o.status = 'active'", patient_uid):
        response = vet.post(f"{server.base_url}/orders/{order_uid}/stop",
                            data={"reason": "Going home"}, timeout=10)
        assert response.status_code == 200, response.text
    assert server.query("SELECT count(*) FROM orders o JOIN patients p ON p.id = o.patient_id "
                        "WHERE p.uid = ? AND o.status = 'active'", patient_uid) == [(0,)]


def wait_for(check, what: str, timeout: float = 30.0):
    """Poll `check()` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.3)
    return value


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
    page.wait_for_function("() => document.documentElement.dataset.sheet === 'ready'")
    task.click()
    dialog = page.locator("#task-dialog")
    dialog.locator(".complete-form").wait_for()
    value = dialog.locator(".complete-form input[name=value]")
    if value.count():
        value.fill("38.5")
    dialog.get_by_role("button", name="✓ Done").click()


def unlock(page, name: str, pin: str) -> None:
    """Choose a name on the lock screen and type the PIN (checked on the tablet)."""
    screen = page.locator("#lock-screen")
    screen.get_by_role("button", name=name).click()
    screen.locator("input[name=pin]").fill(pin)
    screen.get_by_role("button", name="Unlock").click()
    screen.wait_for(state="hidden")
    page.locator("#lock-person", has_text=name).wait_for()


# ---- The anaesthesia sheet on two tablets
def set_up(browser, server, *, number: int, colour: str, username: str, password: str):
    """A tablet-sized page signed in and provisioned (through /tablet#id.token)."""
    out = server.kiosk("devices", "add", "--name", f"Theatre tablet {number}", "--colour",
                       colour, "--number", str(number))
    device = json.loads(out.strip().splitlines()[-1])
    context = browser.new_context(viewport=TABLET, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, server.base_url, username, password)
    page.goto(f"{server.base_url}/tablet#{device['id']}.{device['token']}")
    page.locator("#tablet-status", has_text="This tablet is").wait_for()
    return context, page, device


def start_sheet(page, procedure: str = "", asa: str = "") -> str:
    """Start a sheet from the patient's anaesthesia list; the new sheet's uid."""
    form = page.locator("form.anaesthesia-start")
    if procedure:
        form.locator("input[name=procedure]").fill(procedure)
    if asa:
        form.locator("select[name=asa]").select_option(asa)
    form.get_by_role("button", name="Start anaesthesia sheet").click()
    # Offline the shell draws it; online the shell hands over to the server's page at once.
    page.wait_for_url(re.compile(r"/tablet/anaesthesia-shell#|/anaesthesia/[0-9a-f-]{36}$"),
                      wait_until="commit")
    uid = re.split(r"[#/]", page.url)[-1]
    page.wait_for_load_state()
    return uid


def record_vitals(page, **values) -> None:
    """Fill in the vitals form and record (offline: until the op is queued)."""
    form = page.locator("form.vitals-form")
    for key, value in values.items():
        form.locator(f"input[name={key}]").fill(str(value))
    before = len(outbox(page))
    form.get_by_role("button", name=re.compile("Record vitals")).click()
    if not page.evaluate("navigator.onLine"):
        wait_outbox(page, lambda ops: len(ops) > before, timeout=10_000)


def record_drug(page, drug: str, dose: str) -> None:
    form = page.locator('form[data-kind="drug"]')
    form.locator("input[name=drug]").fill(drug)
    form.locator("input[name=dose]").fill(dose)
    form.get_by_role("button", name=re.compile("Record drug")).click()
    page.locator("#drug table.drugs tr.waiting", has_text=drug).wait_for()


def press_event(page, label: str) -> None:
    page.locator("form.event-buttons").get_by_role("button", name=label, exact=True).click()
    page.locator("#event ul.events li.waiting", has_text=label).wait_for()


def resend(server, device: dict, ops: list[dict]) -> dict:
    """Post a tablet's ops to /api/sync again, as if its first answer was lost."""
    return requests.post(f"{server.base_url}/api/sync", timeout=15,
                         headers={"Authorization": f"Bearer {device['token']}"},
                         json={"device": device["id"], "sent_at": time.strftime(
                             "%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             "outbox": {"pending": len(ops), "oldest_at": ops[0]["at"]},
                             "ops": ops}).json()


def record_ops_of(ops: list[dict]) -> list[dict]:
    return [op for op in ops if op["name"] == "anaesthesia.record"]


def check_merged(server, dev_a, dev_b, ops_a, ops_b, uid, *, first, addenda):
    """One sheet for the patient, holding every entry of both tablets once, by time.

    `first`: the ops of the tablet whose sheet reached the server first (the sheet the
    other joined). `addenda`: the uids of the entries that are addenda, i.e. that reached
    the server after the finalise did (so it depends on which tablet synced first). Every
    op of both tablets, whatever it was, is applied once. Returns the stored entries
    (uid, kind, device, at, confirmed, addendum) by time.
    """
    device_a, device_b = int(dev_a["id"][2:]), int(dev_b["id"][2:])
    roots = server.query(
        "SELECT s.id, s.uid, s.status FROM anaesthesia_sheets s JOIN patients p "
        "ON p.id = s.patient_id WHERE p.uid = ? AND s.merged_into_id IS NULL", uid)
    assert len(roots) == 1, roots
    root_id, root_uid, status = roots[0]
    second = ops_b if first is ops_a else ops_a
    assert root_uid == first[0]["args"]["sheet"] and status == "finalised"
    assert server.query("SELECT merged_into_id FROM anaesthesia_sheets WHERE uid = ?",
                        second[0]["args"]["sheet"]) == [(root_id,)]
    entries = server.query(
        "SELECT uid, kind, device_id, at, confirmed, addendum FROM anaesthesia_entries "
        "WHERE sheet_id = ? ORDER BY at, recorded_at, id", root_id)
    sent = {op["args"]["entry"]: op for op in record_ops_of(ops_a + ops_b)}
    stored = [e for e in entries if e[0] in sent]
    assert sorted(e[0] for e in stored) == sorted(sent)  # every entry, exactly once
    # The only other entries: the headers the starts carried (in these tests, A's).
    assert [(e[1], e[2]) for e in entries if e[0] not in sent] == [("header", device_a)]
    for entry_uid, kind, device, at, _confirmed, addendum in stored:
        op = sent[entry_uid]
        assert kind == op["args"]["kind"]
        assert device == (device_a if op in ops_a else device_b)
        gap = abs((stored_time(at) - stored_time(op["at"])).total_seconds())
        assert gap < 5, (entry_uid, at, op["at"])
        assert bool(addendum) == (entry_uid in addenda), (entry_uid, kind, addendum)
    statuses = server.query("SELECT device_id, status, count(*) FROM sync_ops WHERE device_id "
                            "IN (?, ?) AND status != 'duplicate' GROUP BY device_id, status",
                            device_a, device_b)
    assert sorted(statuses) == sorted([(device_a, "applied", len(ops_a)),
                                       (device_b, "applied", len(ops_b))])
    return stored


# ---- Forms
def draw_signature(page) -> None:
    """A scribble across the signature box, with the mouse as the pointer."""
    box = page.locator("canvas[data-signature=signature]").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
    page.mouse.down()
    for step in range(1, 25):
        page.mouse.move(box["x"] + 20 + step * 12,
                        box["y"] + box["height"] / 2 + (15 if step % 2 else -15))
    page.mouse.up()


def fill_consent(page) -> None:
    """The demo consent form's text fields and choice (not the tick box or signature)."""
    page.locator("textarea[name=owner_name]").fill("Alex Client")
    page.locator("textarea[name=owner_phone]").fill("07700 900123")
    page.locator("textarea[name=procedure]").fill("Dental, extractions")
    page.locator("select[name=cpr]").select_option("Resuscitate")
