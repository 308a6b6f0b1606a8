"""The Content-Security-Policy in a real browser: every kind of page a manager can reach
opens without a refusal (the conftest fails any browser test on one), the guard itself sees
an inline script, and the confirmations moved out of inline handlers still ask."""

import re
from urllib.parse import urljoin, urlsplit

import pytest

from . import conftest
from .conftest import WALL, own_server, sign_in

pytestmark = pytest.mark.e2e

# Links a crawl must not follow: they sign out, or answer a PDF (not a page).
SKIP = re.compile(r"/logout|\.pdf$|\.csv$|/sw\.js$")  # downloads are not pages
ID = re.compile(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27,}|d_\d+)(?=/|$)")
MAX_PAGES = 70


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the crawl starts an anaesthesia sheet and a form."""
    yield from own_server(tmp_path_factory, "kiosk-csp")


@pytest.fixture
def manager(browser, server):
    """A 1080p page signed in as the demo manager on this module's server."""
    context = browser.new_context(viewport=WALL)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, server.base_url, "manager", "manager-demo")
    yield page
    context.close()


def page_kind(link: str) -> str:
    """One link per kind of page: ids and uids replaced, query values dropped."""
    path, _, query = link.partition("?")
    keys = sorted(part.split("=")[0] for part in query.split("&") if part)
    return ID.sub("/<id>", path) + ("?" + "&".join(keys) if keys else "")


def settle(page) -> None:
    """Let deferred scripts, htmx and Socket.IO start (a refusal is reported meanwhile)."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(400)


def test_the_sign_in_pages_pass_the_policy(browser, live_server):
    context = browser.new_context(viewport=WALL)
    page = context.new_page()
    try:
        for path in ("/login", "/tablet", "/pair"):
            response = page.goto(live_server + path)
            assert response.status == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            settle(page)
    finally:
        context.close()
    assert conftest.CSP_VIOLATIONS == []


def start_sheet_and_form(page, base: str) -> None:
    """Start an anaesthesia sheet and a form on the first admitted patient, so their pages
    exist for the crawl."""
    page.goto(base + "/patients/")
    sheet = page.locator("a[href$='/sheet']").first.get_attribute("href")
    uid = sheet.rstrip("/").split("/")[-2]
    page.goto(f"{base}/patients/{uid}/anaesthesia")
    page.locator("input[name=procedure]").fill("Dental")
    page.get_by_role("button", name="Start anaesthesia sheet").click()
    page.wait_for_url(re.compile(r"/anaesthesia/[0-9a-f-]+$"))
    settle(page)
    page.goto(f"{base}/patients/{uid}/forms")
    page.locator("form.start-form button").first.click()
    page.wait_for_url(re.compile(r"/forms/[0-9a-f-]+$"))
    settle(page)


def test_every_kind_of_page_a_manager_reaches_passes_the_policy(manager, server):
    base = server.base_url
    start_sheet_and_form(manager, base)
    seen, queue, visited = set(), ["/patients/", "/boards/", "/admin/", "/devices/"], []
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if page_kind(path) in seen:
            continue
        seen.add(page_kind(path))
        response = manager.goto(base + path)
        settle(manager)
        visited.append((path, response.status if response else None))
        hrefs = manager.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
        for href in hrefs:
            parts = urlsplit(urljoin(manager.url, href))
            if parts.netloc != urlsplit(base).netloc or SKIP.search(parts.path):
                continue
            link = parts.path + (f"?{parts.query}" if parts.query else "")
            if page_kind(link) not in seen:
                queue.append(link)
    kinds = {page_kind(path) for path, _ in visited}
    # The crawl reached the pages that matter: sheets, boards, anaesthesia, forms, admin.
    for expected in ("/patients/<id>/sheet", "/boards/<id>", "/admin/staff", "/admin/displays",
                     "/devices/assignments", "/devices/sync", "/anaesthesia/<id>",
                     "/forms/<id>", "/admin/forms/<id>", "/patients/<id>/orders/new"):
        assert expected in kinds, sorted(kinds)
    assert all(status and status < 500 for _, status in visited), visited
    assert conftest.CSP_VIOLATIONS == []


def test_the_guard_sees_an_inline_script(wall, live_server):
    wall.goto(f"{live_server}/patients/")
    settle(wall)
    wall.evaluate("""() => { const s = document.createElement("script");
        s.textContent = "window.ranInline = true"; document.body.appendChild(s); }""")
    wall.wait_for_timeout(300)
    assert wall.evaluate("window.ranInline === undefined")
    assert any("script-src" in v for v in conftest.CSP_VIOLATIONS), conftest.CSP_VIOLATIONS
    conftest.CSP_VIOLATIONS.clear()  # expected here: the test itself must not fail on it


def test_a_revoke_asks_first_and_a_no_changes_nothing(wall, live_server):
    wall.goto(f"{live_server}/admin/displays")
    wall.locator("input[name=name]").fill("Kennel wall")
    wall.locator("select[name=board]").select_option(index=1)
    wall.get_by_role("button", name="Add display").click()
    link = wall.locator("input.display-link")
    link.wait_for()
    settle(wall)
    link.click()  # one tap selects the whole link, ready to copy
    wall.wait_for_function("() => { const i = document.querySelector('input.display-link');"
                           " return i.selectionStart === 0 && i.selectionEnd === i.value.length; }")
    wall.goto(f"{live_server}/admin/displays")
    row = wall.locator("#displays tbody tr").filter(
        has=wall.get_by_role("cell", name="Kennel wall", exact=True))
    asked = []

    def answer(dialog, accept):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    wall.once("dialog", lambda dialog: answer(dialog, False))
    settle(wall)
    row.get_by_role("button", name="Revoke").click()
    wall.wait_for_timeout(500)
    assert asked == ["Revoke Kennel wall? It is disconnected at once."]
    wall.reload()
    assert "revoked" not in row.inner_text()
    wall.once("dialog", lambda dialog: answer(dialog, True))
    row.get_by_role("button", name="Revoke").click()
    wall.locator(".flash").filter(has_text="Kennel wall was revoked").wait_for()
    assert "revoked" in row.inner_text()
