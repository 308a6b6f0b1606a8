"""A staff message reaching a shared tablet, in a real browser: the vet unlocks a tablet,
opens its Inbox (signing in there with her PIN), and while she looks at the patient list
the manager writes to her on the inbox page. Her tablet shows a banner that a screen
reader announces ("New message: …"), whose link opens the message, which she marks read
there. The nurse's tablet beside it shows nothing of it, and a message to every nurse
shows on the nurse's tablet only. Locked, the vet's tablet shows nothing; once she is
back in her inbox the message waits there, counted in the top bar."""

import json
import re
import time

import pytest

from .conftest import LIVE, LIVE_CONNECTED, TABLET, own_server, sign_in
from .helpers import unlock

pytestmark = pytest.mark.e2e

VET, VET_PIN = "Dr Sam Okafor", "555555"
NURSE, NURSE_PIN = "Priya Tech", "3333"
CONNECTED = LIVE_CONNECTED
JOIN = f"""async (room) => (await import('{LIVE}')).socket.timeout(5000)
  .emitWithAck("join", {{rooms: [room]}})"""
# How long a tablet that should show nothing is watched after the others showed theirs.
QUIET_SECONDS = 2.0


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the messages here must not show in the other tests' inboxes."""
    yield from own_server(tmp_path_factory, "kiosk-inbox-tablet")


def paired_tablet(browser, server, *, number: int, colour: str):
    """A tablet-sized page set up through /tablet#id.token, nobody signed in on the server,
    locked: (context, page, its own live room)."""
    out = server.kiosk("devices", "add", "--name", f"Ward tablet {number}", "--colour", colour,
                       "--number", str(number))
    device = json.loads(out.strip().splitlines()[-1])
    context = browser.new_context(viewport=TABLET, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(30_000)  # the service worker fills its cache meanwhile
    page.goto(f"{server.base_url}/tablet#{device['id']}.{device['token']}")
    page.locator("#tablet-status", has_text="This tablet is").wait_for()
    page.goto(f"{server.base_url}/patients/")
    page.locator("#lock-screen h1", has_text="Locked").wait_for()
    return context, page, f"device:{device['id'].removeprefix('d_')}"


def inbox_by_pin(page, name: str, pin: str) -> None:
    """From the tablet's top bar to the inbox: the inbox is a person's, so the tablet asks
    who (the sign-in page's PIN form) and then opens it."""
    page.locator("nav a.nav-inbox").click()
    page.wait_for_url(re.compile(r"/login\?next=/inbox/"))
    form = page.locator("form[action$='/login/pin']")
    form.locator("select[name=user_id]").select_option(label=name)
    form.locator("input[name=pin]").fill(pin)
    form.get_by_role("button", name="Unlock").click()
    page.wait_for_url(re.compile(r"/inbox/$"))
    page.locator("h1", has_text="Inbox").wait_for()


def on_patient_list(page, base: str, room: str) -> None:
    """Open the patient list and wait until it hears its tablet's own room."""
    page.goto(f"{base}/patients/")
    page.wait_for_function(CONNECTED)
    assert room in page.evaluate(JOIN, room)["joined"]


def badge_count(page) -> int:
    """The top bar's inbox count as shown (0 when hidden)."""
    badge = page.locator("nav a.nav-inbox .count-badge")
    return int(badge.inner_text().split()[0]) if badge.is_visible() else 0


def write(manager, base: str, to: str, subject: str, body: str = "") -> None:
    """The manager writes a message on the inbox page."""
    manager.goto(f"{base}/inbox/")
    form = manager.locator("section.inbox-compose form")
    form.locator("select[name=to]").select_option(label=to)
    form.locator("input[name=subject]").fill(subject)
    form.locator("textarea[name=body]").fill(body)
    form.get_by_role("button", name="Send").click()
    manager.locator(".flash", has_text=f"Message sent: {subject}").wait_for()


def notices(page):
    return page.locator("#inbox-notices .inbox-notice")


def test_a_managers_message_shows_on_the_vets_tablet_and_its_link_opens_it(browser, server):
    base = server.base_url
    vet_context, vet, vet_room = paired_tablet(browser, server, number=1, colour="blue")
    nurse_context, nurse, nurse_room = paired_tablet(browser, server, number=2, colour="green")
    desk = browser.new_context()
    manager = desk.new_page()
    manager.set_default_timeout(15_000)
    try:
        sign_in(manager, base, "manager", "manager-demo")
        unlock(vet, VET, VET_PIN)
        inbox_by_pin(vet, VET, VET_PIN)
        unlock(nurse, NURSE, NURSE_PIN)
        inbox_by_pin(nurse, NURSE, NURSE_PIN)
        on_patient_list(vet, base, vet_room)
        on_patient_list(nurse, base, nurse_room)
        waiting = badge_count(vet)

        subject = "Owner's consent form arrived for Biscuit"
        write(manager, base, VET, subject, body="Signed at the desk, 14:05.")
        banner = vet.get_by_role("status").filter(has_text=f"New message: {subject}")
        banner.wait_for()
        assert banner.locator(".inbox-notice").count() == 1
        vet.wait_for_function(f"() => document.querySelector('nav a.nav-inbox .count-badge')"
                              f".textContent.startsWith('{waiting + 1}')")
        # A message to every nurse: the nurse's tablet shows it, the vet's does not.
        write(manager, base, "Every Nurse (level 3)", "Kennels 3 and 4 need cleaning")
        notices(nurse).filter(has_text="New message: Kennels 3 and 4 need cleaning").wait_for()
        time.sleep(QUIET_SECONDS)
        assert notices(nurse).filter(has_text=subject).count() == 0
        assert notices(vet).count() == 1  # the vet's own message only

        (uid,) = server.query("SELECT uid FROM staff_messages WHERE subject = ?", subject)[0]
        banner.get_by_role("link", name="Open in the inbox").click()
        vet.wait_for_url(re.compile(rf"/inbox/#message-{uid}$"))
        row = vet.locator(f"#message-{uid}")
        row.locator(".inbox-title", has_text=subject).wait_for()
        assert "From Dana Manager" in row.inner_text()
        assert "Signed at the desk, 14:05." in row.inner_text()
        row.get_by_role("button", name="Mark read").click()
        vet.locator(f"#message-{uid}.read").wait_for()
        assert server.query("SELECT read_at IS NOT NULL FROM staff_messages WHERE uid = ?",
                            uid) == [(1,)]

        # Locked, the tablet shows nothing; the message waits in her inbox, counted.
        on_patient_list(vet, base, vet_room)
        vet.locator("#lock-now").click()
        vet.locator("#lock-screen h1", has_text="Locked").wait_for()
        later = "Call Biscuit's owner back"
        write(manager, base, VET, later)
        time.sleep(QUIET_SECONDS)
        assert notices(vet).count() == 0
        unlock(vet, VET, VET_PIN)
        assert notices(vet).count() == 0
        inbox_by_pin(vet, VET, VET_PIN)
        vet.locator("li.inbox-message.unread", has_text=later).wait_for()
        assert badge_count(vet) >= 1
    finally:
        desk.close()
        nurse_context.close()
        vet_context.close()
