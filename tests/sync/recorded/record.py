"""Record the ops a release's own pages queue on an offline tablet (README.md here).

    python tests/sync/recorded/record.py <commit> [<commit> …]

For each commit: a checkout of it in a temporary folder, its own server (`kiosk db upgrade`,
`kiosk demo`, `kiosk run`, all that release's code) on a free port, Debian's Chromium as a
paired tablet. The tablet keeps the pages, goes offline and does what staff do at the
bedside through the release's pages; the ops are then read out of the tablet's outbox
(localStorage before the IndexedDB client, IndexedDB after). Written next to this file as
<commit>.json: the ops, and the database they were made against (as SQL, just before the
tablet went offline), so a test can replay them against today's server.
"""

import gzip
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.helpers import draw_signature  # noqa: E402
from tests.support.server import CHROMIUM, CHROMIUM_ARGS, KioskServer  # noqa: E402

TABLET = {"width": 1180, "height": 820}
OLD_OUTBOX = "() => JSON.parse(localStorage.getItem('kiosk.outbox') || '[]')"
NEW_OUTBOX = ("() => import('/static/js/client/store.js').then(s => s.snapshot())"
              ".then(s => s.ops)")


def checkout(commit: str, into: Path) -> Path:
    """A detached checkout of `commit` (a git worktree, removed by `release`)."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), commit],
                   check=True, capture_output=True)
    return into


def release(into: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(into)],
                   check=False, capture_output=True)


def outbox(page) -> list:
    """The ops on the tablet, from whichever store this release keeps them in."""
    if page.evaluate("() => localStorage.getItem('kiosk.outbox') !== null"):
        return page.evaluate(OLD_OUTBOX)
    return page.evaluate(NEW_OUTBOX)


def wait_outbox(page, count: int, timeout: float = 15) -> list:
    deadline = time.monotonic() + timeout
    while True:
        ops = outbox(page)
        if len(ops) >= count:
            return ops
        if time.monotonic() > deadline:
            raise RuntimeError(f"the outbox holds {len(ops)} ops, not {count}")
        time.sleep(0.2)


def wait_cached(page, path: str, timeout: float = 30) -> None:
    """Until the service worker keeps `path` (a page that moves on is asked again)."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(
                    "p => navigator.serviceWorker.controller && caches.keys().then(ks => "
                    "Promise.all(ks.map(k => caches.open(k).then(c => c.match(p)))))"
                    ".then(hits => hits.some(Boolean))", path):
                return
        except PlaywrightError:
            pass  # the page navigated meanwhile
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} was not kept by the service worker")
        time.sleep(0.2)


def tablet(browser, server):
    """A signed-in, paired tablet page (the vet: every action's level)."""
    out = server.kiosk("devices", "add", "--name", "Ward tablet", "--colour", "blue")
    device = json.loads(out.strip().splitlines()[-1])
    context = browser.new_context(viewport=TABLET, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{server.base_url}/login")
    page.locator("input[name=username]").fill("vet")
    page.locator("input[name=password]").fill("vet-demo-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/patients/?$"))
    page.goto(f"{server.base_url}/tablet#{device['id']}.{device['token']}")
    page.locator("#tablet-status", has_text="This tablet is").wait_for()
    return context, page


def choose(server) -> dict:
    """The demo patients the actions are done on."""
    admitted = [row[0] for row in server.query(
        "SELECT p.uid FROM patients p WHERE p.status = 'admitted' AND EXISTS (SELECT 1 FROM "
        "orders o WHERE o.patient_id = p.id AND o.prn = 1) ORDER BY p.id")]
    leaving = server.query(
        "SELECT uid FROM patients p WHERE status = 'admitted' AND NOT EXISTS (SELECT 1 FROM "
        "orders o WHERE o.patient_id = p.id AND o.prn = 1) ORDER BY id DESC")[0][0]
    template = server.query(
        "SELECT uid FROM form_templates WHERE name = 'Anaesthesia consent'")[0][0]
    return {"sheet": admitted[0], "other": admitted[1], "leaving": leaving,
            "template": template}


def stop_orders(server, patient: str) -> None:
    """Stop the patient's orders online first, so nothing holds its discharge."""
    vet = server.signed_in("vet", "vet-demo-1")
    for (order,) in server.query("SELECT o.uid FROM orders o JOIN patients p ON p.id = "
                                 "o.patient_id WHERE p.uid = ? AND o.status = 'active'",
                                 patient):
        vet.post(f"{server.base_url}/orders/{order}/stop", data={"reason": "Home"},
                 timeout=10).raise_for_status()


def sheet_actions(page, base: str, patient: str) -> list[str]:
    """On a patient's sheet: a value, a skip, a note, a PRN dose, an order stopped."""
    done = []
    page.goto(f"{base}/patients/{patient}/sheet")
    page.wait_for_function("() => !document.documentElement.dataset.sheet || "
                           "document.documentElement.dataset.sheet === 'ready'")
    open_tasks = page.locator("#sheet-grid a.task.overdue, #sheet-grid a.task.due, "
                              "#sheet-grid a.task.scheduled")
    valued = page.locator("#sheet-grid tr[data-value-type=number]").locator(
        "a.task.overdue, a.task.due, a.task.scheduled")
    task = valued.first if valued.count() else open_tasks.first
    task.click()
    dialog = page.locator("#task-dialog")
    dialog.locator(".complete-form").wait_for()
    value = dialog.locator(".complete-form input[name=value]")
    if value.count():
        value.fill("38.4")
    dialog.locator(".complete-form [name=note]").fill("ate well")
    dialog.get_by_role("button", name="✓ Done").click()
    done.append("task.complete with a value and a note")
    wait_outbox(page, 1)
    page.locator("#sheet-grid a.task.scheduled").last.click()
    dialog.locator(".skip-form input[name=reason]").fill("Patient sleeping")
    dialog.locator(".skip-form").get_by_role("button", name="Skip").click()
    done.append("task.skip with a reason")
    wait_outbox(page, 2)
    page.locator(".note-form textarea").fill("Ate half her food.")
    page.get_by_role("button", name="Add note").click()
    done.append("note.add")
    wait_outbox(page, 3)
    give = page.locator("#sheet-grid .give-form").first
    give.get_by_role("button", name="Give now").click()
    done.append("a PRN dose (Give now)")
    wait_outbox(page, 4)
    page.on("dialog", lambda d: d.accept())
    stop = page.locator("#sheet-grid .stop-form").last
    if stop.locator("input[name=reason]").count():
        stop.locator("input[name=reason]").fill("Vomiting")
    stop.get_by_role("button", name=re.compile("Stop")).click()
    done.append("order.stop")
    wait_outbox(page, 5)
    return done


def new_patient_actions(page, base: str, count: int) -> list[str]:
    """A patient admitted on the tablet, an order for it, its first task done."""
    page.goto(f"{base}/patients/new")
    page.locator("input[name=name]").fill("Offline Olive")
    page.locator("input[name=species]").fill("feline")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/tablet/sheet-shell#"))
    page.locator("#shell-head h1", has_text="Offline Olive").wait_for()
    wait_outbox(page, count + 1)
    page.locator("summary", has_text="+ Order").click()
    page.locator(".shell-order input[name=name]").fill("Walk")
    page.locator(".shell-order select[name=kind]").select_option("task")
    page.locator(".shell-order input[name=every_hours]").fill("4")
    page.get_by_role("button", name="Create order").click()
    wait_outbox(page, count + 2)
    return ["patient.create", "order.create (every 4 hours)"]


def form_actions(page, base: str, patient: str, template: str, count: int) -> list[str]:
    """The demo consent form filled, ticked, signed and finalised."""
    page.goto(f"{base}/patients/{patient}/forms")
    page.get_by_role("button", name="Anaesthesia consent").click()
    page.wait_for_url(re.compile(re.escape(f"/forms/new/{template}")))
    page.locator("textarea[name=owner_name]").fill("Alex Client")
    page.locator("textarea[name=owner_phone]").fill("07700 900123")
    page.locator("textarea[name=procedure]").fill("Dental, extractions")
    page.locator("select[name=cpr]").select_option("Resuscitate")
    page.locator("input[name=risks]").check()
    draw_signature(page)
    page.get_by_role("button", name="Finalise").click()
    page.locator("#form-status", has_text="Finalised on this tablet").wait_for()
    wait_outbox(page, count + 3)
    return ["form.start, form.fill (with a tick and a signature), form.finalise"]


def anaesthesia_actions(page, base: str, patient: str, count: int) -> list[str]:
    """A sheet started, vitals and a drug recorded, the sheet finalised."""
    page.goto(f"{base}/patients/{patient}/anaesthesia")
    form = page.locator("form.anaesthesia-start")
    form.locator("input[name=procedure]").fill("Dental")
    form.locator("select[name=asa]").select_option("II")
    form.get_by_role("button", name="Start anaesthesia sheet").click()
    page.wait_for_url(re.compile(r"/tablet/anaesthesia-shell#"))
    wait_outbox(page, count + 1)
    vitals = page.locator("form.vitals-form")
    for key, value in (("hr", "88"), ("spo2", "97")):
        vitals.locator(f"input[name={key}]").fill(value)
    vitals.get_by_role("button", name=re.compile("Record vitals")).click()
    wait_outbox(page, count + 2)
    drug = page.locator('form[data-kind="drug"]')
    drug.locator("input[name=drug]").fill("Propofol")
    drug.locator("input[name=dose]").fill("4 mg/kg")
    drug.get_by_role("button", name=re.compile("Record drug")).click()
    wait_outbox(page, count + 3)
    page.get_by_role("button", name=re.compile("Finalise")).click()
    wait_outbox(page, count + 4)
    return ["anaesthesia.start, anaesthesia.record (vitals, drug), anaesthesia.finalise"]


def discharge_action(page, base: str, patient: str, count: int) -> list[str]:
    page.goto(f"{base}/patients/{patient}/sheet")
    page.get_by_role("button", name="Discharge").click()
    wait_outbox(page, count + 1)
    return ["patient.discharge"]


def shift_end_action(page, base: str, count: int) -> list[str]:
    """The patients list's "Mark end of shift", where the release has it."""
    page.goto(f"{base}/patients/")
    button = page.get_by_role("button", name=re.compile("end of shift", re.I))
    if not button.count():
        return []
    button.click()
    wait_outbox(page, count + 1)
    return ["shift.end"]


def database_sql(server) -> str:
    """The server's whole database as SQL (sqlite3's dump)."""
    conn = sqlite3.connect(f"file:{server.database_path()}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def record(commit: str, browser) -> Path:
    """Record `commit`'s ops; the fixture file written."""
    short = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=7", commit],
                           check=True, capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix=f"kiosk-record-{short}-"))
    tree = checkout(commit, work / "tree")
    server = KioskServer(work, env={"PYTHONPATH": str(tree), "KIOSK_TIMEZONE": "UTC"})
    try:
        server.prepare()
        server.start()
        chosen = choose(server)
        stop_orders(server, chosen["leaving"])
        context, page = tablet(browser, server)
        base = server.base_url
        pages = [f"/patients/{chosen[k]}/sheet" for k in ("sheet", "leaving")] + [
            "/patients/", "/patients/new", "/tablet/sheet-shell",
            f"/patients/{chosen['other']}/forms",
            f"/patients/{chosen['other']}/forms/new/{chosen['template']}",
            f"/patients/{chosen['other']}/anaesthesia", "/tablet/anaesthesia-shell"]
        for path in pages:
            page.goto(base + path)
            wait_cached(page, path)
        sql = database_sql(server)  # the world the ops were made in
        context.set_offline(True)
        did = sheet_actions(page, base, chosen["sheet"])
        did += new_patient_actions(page, base, len(outbox(page)))
        did += form_actions(page, base, chosen["other"], chosen["template"], len(outbox(page)))
        did += anaesthesia_actions(page, base, chosen["other"], len(outbox(page)))
        did += discharge_action(page, base, chosen["leaving"], len(outbox(page)))
        did += shift_end_action(page, base, len(outbox(page)))
        ops = outbox(page)
        context.close()
    finally:
        server.stop()
        release(tree)
    target = HERE / f"{short}.json"
    target.write_text(json.dumps({
        "release": short, "recorded_with": "tests/sync/recorded/record.py",
        "actions": did,
        "ops": [{k: op[k] for k in ("id", "seq", "name", "args", "at", "user")} for op in ops],
    }, indent=1, ensure_ascii=False) + "\n")
    (HERE / f"{short}.sql.gz").write_bytes(gzip.compress(sql.encode(), mtime=0))
    return target


def main(commits: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for commit in commits:
                print(record(commit, browser))
        finally:
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1:] or sys.exit(__doc__))
