"""Screenshots for the documentation: the ICU whiteboard at 1080p, a tablet sheet and an
anaesthesia sheet on a tablet, the first page of the billing report's PDF, the flows
builder with a dry run, and the client portal's form on a phone.

Starts `kiosk run --demo` on a temporary SQLite database and a free port, signs in with
Debian's Chromium (Playwright), writes docs/whiteboard.png, docs/sheet.png,
docs/anaesthesia-sheet.png, docs/flow-builder.png (the demo's "Senior bloods" flow in the
builder) and docs/flow-dry-run.png (its dry run for a senior dog of the demo), and stops
the server; docs/portal-form.png is an intake form e-mailed to a demo owner, filled and
signed with a finger on a phone, before it is sent. The billing PDF is made from the demo
clinic in a database of its own (with one charge a tablet sent late), and shown by
Chromium's PDF viewer for docs/billing-pdf.png. With --maintenance-only (a demo server of its
own): a window planned (docs/maintenance-plan.png), its banner on the ICU board and on a
tablet that fetched its pages fresh (docs/maintenance-board.png, docs/maintenance-tablet.png),
the public status page meanwhile (docs/status-page.png), and, after the tablet did a task
offline and the window ended, the after-outage report (docs/outage-report.png).

    python docs/screenshots.py [--out docs] [--billing-only | --flows-only | --portal-only |
                                --maintenance-only]
"""

import argparse
import re
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import CHROMIUM, CHROMIUM_ARGS, KioskServer  # noqa: E402

WALL = {"width": 1920, "height": 1080}
TABLET = {"width": 1180, "height": 820}


def sign_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in with the password form."""
    page.goto(f"{base_url}/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/patients/")


def whiteboard_shot(browser, base_url: str, path: Path) -> None:
    """The first board (the demo's ICU) on a 1080p wall display."""
    context = browser.new_context(viewport=WALL)
    page = context.new_page()
    sign_in(page, base_url, "manager", "manager-demo")
    page.goto(f"{base_url}/boards/1")
    page.locator("#board-grid .board-row").first.wait_for()
    page.wait_for_function("document.getElementById('board-clock').textContent.length > 0")
    page.screenshot(path=str(path))
    context.close()


def busiest_sheet(page, base_url: str) -> str:
    """The sheet URL of the patient with the most orders today."""
    page.goto(f"{base_url}/patients/")
    hrefs = page.locator("ul.patient-list a[href$='/sheet']").evaluate_all(
        "els => els.map(a => a.getAttribute('href'))")
    best, most = None, -1
    for href in hrefs:
        page.goto(base_url + href)
        count = page.locator("tr.order-row").count()
        if count > most:
            best, most = base_url + href, count
    return best


def sheet_shot(browser, base_url: str, path: Path) -> None:
    """A busy patient's sheet on a tablet, scrolled to the current hour."""
    context = browser.new_context(viewport=TABLET, has_touch=True)
    page = context.new_page()
    sign_in(page, base_url, "tech", "tech-demo-1")
    page.goto(busiest_sheet(page, base_url))
    page.locator("#sheet-grid").wait_for()
    page.wait_for_load_state("load")
    # sheet.js scrolls the grid so the current hour is in view; let it paint first.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.screenshot(path=str(path))
    context.close()


# An anaesthesia under way: vitals every five minutes (HR, SpO₂, EtCO₂, systolic, diastolic).
ANAESTHESIA_VITALS = ((96, 98, 36, 118, 72), (88, 98, 38, 104, 62), (82, 97, 41, 96, 55),
                      (80, 98, 42, 94, 52), (84, 99, 40, 100, 58), (86, 98, 39, 108, 64))


def record_at(page, form, when: datetime) -> None:
    """Submit an anaesthesia entry form as recorded at `when` (the sheet's page takes an
    entry's time in the clinic's zone, as when a paper note is typed in afterwards), and
    wait for the page."""
    clinic = ZoneInfo(page.locator("body").get_attribute("data-clinic-tz") or "UTC")
    form.evaluate("(f, at) => { const i = document.createElement('input'); i.type = 'hidden';"
                  " i.name = 'at'; i.value = at; f.appendChild(i); }",
                  when.astimezone(clinic).strftime("%Y-%m-%dT%H:%M"))
    with page.expect_navigation():
        form.locator("button[type=submit]").first.click()


def anaesthesia_shot(browser, base_url: str, path: Path) -> None:
    """An anaesthesia sheet on a landscape tablet, forty minutes into an anaesthetic: the
    vitals form on the first screen, the chart under it."""
    context = browser.new_context(viewport={"width": 1024, "height": 768}, has_touch=True)
    page = context.new_page()
    sign_in(page, base_url, "vet", "vet-demo-1")
    href = page.locator("ul.patient-list a[href$='/sheet']").first.get_attribute("href")
    page.goto(base_url + href.replace("/sheet", "/anaesthesia"))
    start = page.locator("form.anaesthesia-start")
    start.locator("input[name=procedure]").fill("Dental, extractions")
    start.locator("select[name=asa]").select_option("II")
    start.locator("input[name=team]").fill("Dr Okafor, Priya")
    start.locator("input[name=equipment]").fill("ECG, SpO₂, capnograph, NIBP")
    start.get_by_role("button", name="Start anaesthesia sheet").click()
    page.wait_for_url("**/anaesthesia/*")
    # A note written now gives the server's time (its clock may not be this machine's).
    note = page.locator('form[data-kind="note"]')
    note.locator("textarea[name=text]").fill("Extubated; warming in recovery.")
    with page.expect_navigation():
        note.get_by_role("button", name="Add note").click()
    now = datetime.fromisoformat(page.locator("#note ul.notes li[data-at]").first
                                 .get_attribute("data-at"))
    began = now.replace(second=0, microsecond=0) - timedelta(minutes=45)
    record_at(page, page.locator("form.event-buttons"), began)  # its first button: Induction
    drug = page.locator('form[data-kind="drug"]')
    drug.locator("input[name=drug]").fill("Propofol")
    drug.locator("input[name=dose]").fill("4 mg/kg")
    record_at(page, page.locator('form[data-kind="drug"]'), began)
    for minutes, (hr, spo2, etco2, sys_, dia) in enumerate(ANAESTHESIA_VITALS):
        form = page.locator("form.vitals-form")
        for key, value in (("hr", hr), ("spo2", spo2), ("etco2", etco2), ("sys", sys_),
                           ("dia", dia)):
            form.locator(f"input[name={key}]").fill(str(value))
        record_at(page, form, began + timedelta(minutes=5 + 7 * minutes))
    page.goto(page.url.split("#")[0])
    page.locator("#vitals figure.anaesthesia-chart").wait_for()
    page.screenshot(path=str(path))
    context.close()


def senior_dog(server) -> tuple[str, str]:
    """(uid, name) of the demo's oldest dog (one "Senior bloods" starts for: 7 or older)."""
    from kiosk.core import clock

    uid, name, born = server.query(
        "SELECT uid, name, date_of_birth FROM patients WHERE species = 'canine' "
        "AND date_of_birth IS NOT NULL ORDER BY date_of_birth LIMIT 1")[0]
    if (clock.utcnow().date() - date.fromisoformat(born)).days < 7 * 366:
        raise RuntimeError("the demo has no dog of 7 or older for the dry run")
    return uid, name


def next_saturday_afternoon() -> str:
    """The coming Saturday at 14:00 as a datetime-local value: an admission whose task
    falls on the weekend, so the dry run shows it moved to Monday."""
    from kiosk.core import clock

    today = clock.utcnow().date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return f"{saturday.isoformat()}T14:00"


def flows_shots(browser, server, out: Path) -> None:
    """The "Senior bloods" flow in the builder (the whole form), then its dry run for the
    demo's oldest dog admitted on a Saturday afternoon."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server.base_url, "manager", "manager-demo")
    page.goto(f"{server.base_url}/flows/")
    row = page.locator("tr", has_text="Senior bloods")
    row.get_by_role("link", name="Edit").click()
    page.locator("#flow-form").wait_for()
    page.screenshot(path=str(out / "flow-builder.png"), full_page=True)
    page.goto(f"{server.base_url}/flows/")
    row.get_by_role("link", name="Dry run").click()
    uid, _ = senior_dog(server)
    form = page.locator("form.flow-dry-form")
    form.locator("select[name=patient]").select_option(uid)
    form.locator("input[name=at]").fill(next_saturday_afternoon())
    form.get_by_role("button", name="Show what it would do").click()
    page.locator("section.flow-plan").wait_for()
    page.screenshot(path=str(out / "flow-dry-run.png"), full_page=True)
    context.close()


def portal_shot(browser, server, path: Path) -> None:
    """The intake form of a demo owner's portal link on a phone, filled and signed."""
    from tests.support.portal import PHONE, fill_intake, portal_message_on

    sent = portal_message_on(server, "Biscuit")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(sent["link"])
    page.get_by_role("link", name=re.compile("^Fill in the form")).click()
    page.locator("canvas[data-signature]").wait_for()
    fill_intake(page)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    context.close()


def billing_pdf(tmp: Path) -> Path:
    """The demo clinic's last shift as a billing PDF, with a charge a tablet recorded
    offline during the shift and sent after its end."""
    from datetime import UTC

    from kiosk import create_app
    from kiosk.billing.printing import billing_report_pdf
    from kiosk.billing.selectors import period_default, report_build
    from kiosk.billing.services import charge_add
    from kiosk.billing.views import clinic_time_format, quantity_text
    from kiosk.core import clock
    from kiosk.demo import demo_build
    from kiosk.devices.services import device_provision
    from kiosk.extensions import db
    from kiosk.staff.models import User

    app = create_app("default", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/billing.db",
                                 "SECRET_KEY": "screenshots", "KIOSK_TIMEZONE": "Europe/London"})
    with app.app_context():
        db.create_all()
        with clock.frozen(datetime(2026, 11, 22, 16, 20, tzinfo=UTC)):
            demo_build()
            db.session.flush()
            period = period_default()
            tablet, _ = device_provision(name="Ward", colour="green")
            vet = db.session.scalar(db.select(User).where(User.username == "vet"))
            patient = report_build(period).patients[0].patient  # the first page's
            charge_add(patient=patient, user=vet, device=tablet, data={
                "item_code": "BAND", "performed_at": period.end - timedelta(minutes=50)})
            db.session.commit()
            with app.test_request_context():
                data = billing_report_pdf(report_build(period_default()),
                                          when=clinic_time_format(), qty=quantity_text)
    path = tmp / "billing.pdf"
    path.write_bytes(data)
    return path


def billing_pdf_shot(browser, pdf: Path, path: Path) -> None:
    """The PDF's first page as Chromium's viewer shows it, without its toolbar."""
    context = browser.new_context(viewport={"width": 1240, "height": 900})
    page = context.new_page()
    page.goto(f"file://{pdf}#toolbar=0&view=FitH")
    page.wait_for_timeout(2500)  # the viewer paints the page after the load event
    page.screenshot(path=str(path))
    context.close()


def maintenance_shots(browser, server, out: Path) -> None:
    """A window planned three minutes ahead (under way at once: its lead is five minutes),
    its banner on the board and a tablet, the status page, then a task done offline on the
    tablet, the window ended by hand, and the report once the tablet has synced."""
    from kiosk.core import clock
    from tests.e2e.helpers import complete_in_dialog, patient_with_open_tasks, set_up_tablet

    base = server.base_url
    start = (clock.utcnow() + timedelta(minutes=3)).replace(second=0, microsecond=0)
    manager = browser.new_context(viewport={"width": 1280, "height": 900})
    page = manager.new_page()
    sign_in(page, base, "manager", "manager-demo")
    page.goto(f"{base}/maintenance/")
    form = page.locator("#window-plan form")
    form.locator("input[name=starts_at]").fill(start.strftime("%Y-%m-%dT%H:%M"))
    end = start + timedelta(hours=1)
    form.locator("input[name=ends_at]").fill(end.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=message]").fill("Upgrade to the new release: tablets keep working.")
    form.get_by_role("button", name="Plan maintenance").click()
    for _ in range(60):  # under way within a tick
        page.goto(f"{base}/maintenance/")
        if page.locator("#window-current form").count():
            break
        page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "maintenance-plan.png"), full_page=True)

    wall = browser.new_context(viewport=WALL)
    board = wall.new_page()
    sign_in(board, base, "manager", "manager-demo")
    board.goto(f"{base}/boards/1")
    board.locator("#maintenance-banner[data-window]").wait_for()
    board.screenshot(path=str(out / "maintenance-board.png"))
    wall.close()

    context, tablet, _ = set_up_tablet(browser, server)
    uid, name = patient_with_open_tasks(server)
    tablet.goto(f"{base}/patients/{uid}/sheet")
    tablet.locator("#maintenance-banner [data-fresh]").filter(
        has_text="fetched fresh").wait_for(timeout=60_000)
    tablet.screenshot(path=str(out / "maintenance-tablet.png"))

    status = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
    status.goto(f"{base}/status")
    status.screenshot(path=str(out / "status-page.png"), full_page=True)
    status.context.close()

    context.set_offline(True)
    task = tablet.locator("a.task:not(.done)").first
    complete_in_dialog(tablet, task)
    tablet.locator("a.task.done.waiting").first.wait_for()
    tablet.wait_for_timeout(6000)  # longer than "offline" means for billing here
    page.goto(f"{base}/maintenance/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#window-current").get_by_role("button", name="End now").click()
    page.locator(".flash", has_text="Maintenance ended").wait_for()
    context.set_offline(False)
    page.goto(f"{base}/outages/")
    page.locator("a[href^='/outages/']").first.click()
    page.locator("#outage-devices .sync-verdict", has_text="All synced").wait_for(timeout=120_000)
    page.screenshot(path=str(out / "outage-report.png"), full_page=True)
    context.close()
    manager.close()


def main() -> int:
    """Start the demo server, take the screenshots, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--billing-only", action="store_true",
                      help="only docs/billing-pdf.png (no demo server)")
    only.add_argument("--flows-only", action="store_true",
                      help="only docs/flow-builder.png and docs/flow-dry-run.png")
    only.add_argument("--portal-only", action="store_true", help="only docs/portal-form.png")
    only.add_argument("--maintenance-only", action="store_true",
                      help="only the maintenance, status and outage report screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    if args.maintenance_only:
        return maintenance_main(args.out)
    if not (args.flows_only or args.portal_only):
        with tempfile.TemporaryDirectory(prefix="kiosk-shots-") as tmp, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=[*CHROMIUM_ARGS, "--headless=new"])
            try:
                billing_pdf_shot(browser, billing_pdf(Path(tmp)), args.out / "billing-pdf.png")
            finally:
                browser.close()
        print(f"wrote {args.out / 'billing-pdf.png'}")
    if args.billing_only:
        return 0
    flows = ("flow-builder.png", "flow-dry-run.png")
    portal = ("portal-form.png",)
    with tempfile.TemporaryDirectory(prefix="kiosk-shots-") as tmp, \
            KioskServer(Path(tmp), run_demo=True) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            if not (args.flows_only or args.portal_only):
                whiteboard_shot(browser, server.base_url, args.out / "whiteboard.png")
                sheet_shot(browser, server.base_url, args.out / "sheet.png")
                anaesthesia_shot(browser, server.base_url, args.out / "anaesthesia-sheet.png")
            if not args.portal_only:
                flows_shots(browser, server, args.out)
            if not args.flows_only:
                portal_shot(browser, server, args.out / "portal-form.png")
        finally:
            browser.close()
    names = flows if args.flows_only else portal if args.portal_only else (
        "whiteboard.png", "sheet.png", "anaesthesia-sheet.png", *flows, *portal)
    for name in names:
        print(f"wrote {args.out / name}")
    return 0


def maintenance_main(out: Path) -> int:
    """The maintenance screenshots, on a demo server of their own (the banner asked for
    every 3 s; a change 5 s late counts as offline)."""
    from playwright.sync_api import sync_playwright

    env = {"KIOSK_MAINTENANCE_POLL_S": "3", "KIOSK_BILLING_OFFLINE_AFTER_S": "5"}
    with tempfile.TemporaryDirectory(prefix="kiosk-shots-") as tmp, \
            KioskServer(Path(tmp), env=env) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            maintenance_shots(browser, server, out)
        finally:
            browser.close()
    for name in ("maintenance-plan.png", "maintenance-board.png", "maintenance-tablet.png",
                 "status-page.png", "outage-report.png"):
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
