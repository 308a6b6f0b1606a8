"""Screenshots for the documentation: the ICU whiteboard at 1080p and a tablet sheet.

Starts `kiosk run --demo` on a temporary SQLite database and a free port, signs in with
Debian's Chromium (Playwright), writes docs/whiteboard.png and docs/sheet.png, and stops
the server.

    python docs/screenshots.py [--out docs]
"""

import argparse
import sys
import tempfile
from pathlib import Path

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


def main() -> int:
    """Start the demo server, take both screenshots, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiosk-shots-") as tmp, \
            KioskServer(Path(tmp), run_demo=True) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            whiteboard_shot(browser, server.base_url, args.out / "whiteboard.png")
            sheet_shot(browser, server.base_url, args.out / "sheet.png")
        finally:
            browser.close()
    for name in ("whiteboard.png", "sheet.png"):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
