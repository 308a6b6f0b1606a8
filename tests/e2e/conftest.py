"""Real-browser fixtures: a `kiosk run` server on a demo clinic, and Debian's Chromium.

Without /usr/bin/chromium (or Playwright) the browser tests are skipped with the reason
printed; on CI (the CI variable set) a missing browser fails them instead.
"""

import os
import re
from pathlib import Path

import pytest

from .server import CHROMIUM, CHROMIUM_ARGS, KioskServer

TABLET = {"width": 1180, "height": 820}
WALL = {"width": 1920, "height": 1080}
# Patients on the extra ward: more rows than a 1080p board shows at once.
CROWDED_PATIENTS = 30


def pytest_collection_modifyitems(items):
    """Every test in this folder drives a real browser."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (install Debian's chromium package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session")
def browser_ready():
    """Skip (or on CI fail) when Chromium or Playwright is missing."""
    problem = _browser_missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"Browser tests cannot run on CI: {problem}")
        pytest.skip(f"Browser tests skipped: {problem}")


def serving(server: KioskServer):
    """For fixtures: prepare and start `server`, yield it, stop it. A server that cannot
    start fails the test, with what it printed."""
    try:
        server.prepare()
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def own_server(tmp_path_factory, name: str):
    """A server a module has to itself (its tests stop and start it): yields, then stops."""
    yield from serving(KioskServer(tmp_path_factory.mktemp(name)))


@pytest.fixture(scope="session")
def live_server(browser_ready, tmp_path_factory):
    """The base URL of a real server on a demo clinic (plus a crowded ward board)."""
    for server in serving(KioskServer(tmp_path_factory.mktemp("kiosk-e2e"),
                                      crowded=CROWDED_PATIENTS)):
        yield server.base_url


@pytest.fixture(scope="session")
def browser(browser_ready):
    """Debian's Chromium through Playwright, for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in with the password form and wait for the page it leads to."""
    page.goto(f"{base_url}/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/patients/?$"))


@pytest.fixture
def tablet(browser, live_server):
    """A tablet-sized page signed in as the demo technician."""
    context = browser.new_context(viewport=TABLET, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, "tech", "tech-demo-1")
    yield page
    context.close()


@pytest.fixture
def wall(browser, live_server):
    """A 1080p display page signed in as the demo manager."""
    context = browser.new_context(viewport=WALL)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, "manager", "manager-demo")
    yield page
    context.close()
