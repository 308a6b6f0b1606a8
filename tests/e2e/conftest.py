"""Real-browser fixtures: a `kiosk run` server on a demo clinic, and Debian's Chromium.

Without /usr/bin/chromium (or Playwright) the browser tests are skipped with the reason
printed; on CI (the CI variable set) a missing browser fails them instead.

Every browser context reports what the pages' Content-Security-Policy refused, and any
browser test during which something was refused fails: all of them guard the policy.
"""

import os
import re
import time
from pathlib import Path

import pytest

from tests.support.server import CHROMIUM, CHROMIUM_ARGS, KioskServer, serving

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


# How much of a server's log a failed browser test shows: what the server said meanwhile.
LOG_TAIL_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test that failed shows the end of its server's log beside the failure,
    so a failure on CI can be read without the server's files."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, KioskServer):
            lines = value.log_text().splitlines()[-LOG_TAIL_LINES:]
            report.sections.append((f"server log ({value.log_path.name}, last lines)",
                                    "\n".join(lines)))


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


def own_server(tmp_path_factory, name: str):
    """A server a module has to itself (its tests stop and start it): yields, then stops."""
    yield from serving(KioskServer(tmp_path_factory.mktemp(name)))


@pytest.fixture(scope="session")
def live_server(browser_ready, tmp_path_factory):
    """The base URL of a real server on a demo clinic (plus a crowded ward board)."""
    for server in serving(KioskServer(tmp_path_factory.mktemp("kiosk-e2e"),
                                      crowded=CROWDED_PATIENTS)):
        yield server.base_url


# What the Content-Security-Policy refused during the current test, in words.
CSP_VIOLATIONS: list[str] = []
# Runs first in every page (and frame): Chromium fires this event for each refusal.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.effectiveDirective + " refused " +
    (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber + " " +
    (e.sample || ""));
}, true);
"""


def csp_watch(context) -> None:
    """Record every Content-Security-Policy refusal of `context`'s pages in CSP_VIOLATIONS."""
    def on_console(message) -> None:
        text = message.text
        if "CSP violation:" in text or "Content Security Policy" in text:
            CSP_VIOLATIONS.append(f"{message.page.url if message.page else '?'}: {text}")

    context.add_init_script(CSP_REPORTER)
    context.on("console", on_console)


@pytest.fixture(autouse=True)
def csp_clean(request):
    """Fail any browser test during which a page broke the Content-Security-Policy."""
    CSP_VIOLATIONS.clear()
    yield
    if "e2e" in request.keywords and CSP_VIOLATIONS:
        found = "\n".join(dict.fromkeys(CSP_VIOLATIONS))
        CSP_VIOLATIONS.clear()
        pytest.fail(f"The Content-Security-Policy refused something:\n{found}")


# Playwright polls a wait_for_function *expression* ("window.x && …") with eval inside the
# page, which the policy refuses (no 'unsafe-eval'); a function ("() => …") it calls as is.
_FUNCTION = re.compile(r"\s*(async\s+)?(function\b|\(|[A-Za-z_$][\w$]*\s*=>)")


def _functions_only(cls) -> None:
    """Make `cls.wait_for_function` turn a bare expression into an arrow function."""
    original = cls.wait_for_function
    if getattr(original, "csp_safe", False):
        return

    def wait_for_function(self, expression, *args, **kwargs):
        if isinstance(expression, str) and not _FUNCTION.match(expression):
            expression = f"() => ({expression})"
        return original(self, expression, *args, **kwargs)

    wait_for_function.csp_safe = True
    cls.wait_for_function = wait_for_function


@pytest.fixture(scope="session")
def browser(browser_ready):
    """Debian's Chromium through Playwright, for the whole session; every context it makes
    reports Content-Security-Policy refusals (csp_watch)."""
    from playwright.sync_api import Frame, Page, sync_playwright

    _functions_only(Page)
    _functions_only(Frame)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        original = chromium.new_context

        def new_context(*args, **kwargs):
            context = original(*args, **kwargs)
            csp_watch(context)
            return context

        chromium.new_context = new_context
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


# ---- The tablet's outbox, read from a page --------------------------------------------------
# The outbox lives in IndexedDB (static/js/client/store.js); these read it through the same
# module the pages use, so a test checks what the tablet really holds.
STORE = "/static/js/client/store.js"
OUTBOX = "/static/js/client/outbox.js"
LIVE = "/static/js/live.js"  # the page's own live module (its socket, once connected)
LIVE_CONNECTED = f"() => import('{LIVE}').then(live => !!(live.socket && live.socket.connected))"
# Join the page's rooms once more and wait for the answer: the server has put this
# connection in them by then (the join sent on connect is not acknowledged).
LIVE_JOINED = f"""async () => {{
  const rooms = JSON.parse(document.querySelector("[data-live-rooms]").dataset.liveRooms);
  const {{socket}} = await import('{LIVE}');
  return await socket.timeout(5000).emitWithAck("join", {{rooms: rooms}});
}}"""
_SNAPSHOT = f"() => import('{STORE}').then(s => s.snapshot())"


def outbox_snapshot(page) -> dict:
    """What the tablet keeps: {"ops": [...], "attention": [...], "nextSeq": n}."""
    return page.evaluate(_SNAPSHOT)


def outbox_ops(page) -> list:
    """The ops waiting on the tablet, in seq order."""
    return outbox_snapshot(page)["ops"]


def attention_list(page) -> list:
    """The tablet's "needs attention" list."""
    return outbox_snapshot(page)["attention"]


def next_seq(page) -> int:
    """The seq the tablet's next op gets."""
    return outbox_snapshot(page)["nextSeq"]


def set_next_seq(page, n: int) -> None:
    """Set the tablet's counter (as a restore from a backup might)."""
    page.evaluate(f"n => import('{STORE}').then(s => s.setNextSeq(n))", n)


def flush(page) -> None:
    """Press the outbox's Sync (send now, also when revoked), in the page's own module."""
    page.evaluate(f"() => import('{OUTBOX}').then(o => {{ o.flush(true); }})")


def wait_outbox(page, check=lambda ops: not ops, timeout: float = 30_000) -> list:
    """Until check(ops) holds for the tablet's outbox (by default: empty); the ops then."""

    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            ops = outbox_ops(page)
        except PlaywrightError:  # the page navigated meanwhile: read again
            ops = None
        if ops is not None and check(ops):
            return ops
        assert time.monotonic() < deadline, f"the outbox never got there: {ops}"
        time.sleep(0.1)
