"""From an admission to the vet's inbox, for real: the manager turns on the demo's intake
flow and imports a patient from the practice system; the flow e-mails the owner (a real
SMTP server on 127.0.0.1) a portal link; the owner opens it on a phone, fills in and
signs the intake form; the form is on the patient's record, and the demo's second flow
tells the patient's doctor in the inbox."""

import email
import re
import time

import pytest
from aiosmtpd.controller import Controller

from tests.support.portal import PHONE, draw_with_a_finger
from tests.support.server import KioskServer, serving

from .conftest import TABLET, sign_in

pytestmark = pytest.mark.e2e

PATIENT = "Juniper"
OWNER = "Morgan Reyes"
ADDRESS = "morgan.reyes@example.net"
IMPORT = (f"patient_id,name,species,ward,cage,doctor,owner_id,owner_name,owner_email\n"
          f"PMS-9001,{PATIENT},canine,ICU,I9,Dr Sam Okafor,CL-77,{OWNER},{ADDRESS}\n")


class Mailbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture(scope="module")
def mailbox():
    """A real SMTP server on 127.0.0.1 for the module's server."""
    from tests.support.server import free_port

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory, mailbox):
    """A demo server sending e-mail through `mailbox`, its own address as the public one."""
    server = KioskServer(tmp_path_factory.mktemp("kiosk-messages"), env={
        "KIOSK_SMTP_HOST": "127.0.0.1", "KIOSK_SMTP_PORT": str(mailbox.port),
        "KIOSK_SMTP_FROM": "clinic@example.org"})
    server.env["KIOSK_PUBLIC_URL"] = server.base_url
    yield from serving(server)


def wait_for_mail(box: Mailbox, timeout: float = 60.0) -> email.message.Message:
    deadline = time.monotonic() + timeout
    while not box.messages:
        assert time.monotonic() < deadline, "no e-mail arrived"
        time.sleep(0.2)
    return box.messages[0]


def body_of(message, kind: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == kind)
    return part.get_payload(decode=True).decode()


def test_an_admission_emails_the_owner_who_fills_the_form_and_the_vet_is_told(
        browser, server, mailbox, tmp_path):
    desk = browser.new_context(viewport=TABLET)
    page = desk.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, server.base_url, "manager", "manager-demo")
        page.goto(f"{server.base_url}/flows/")
        row = page.locator("tr", has_text="Intake form to the owner")
        row.get_by_role("button", name="Turn on").click()
        page.locator("tr", has_text="Intake form to the owner").locator(
            ".tag", has_text="On").wait_for()
        # The practice system's file admits the patient, with the owner's e-mail address.
        upload = tmp_path / "admissions.csv"
        upload.write_text(IMPORT)
        page.goto(f"{server.base_url}/intake/")
        page.locator("input[type=file]").set_input_files(str(upload))
        page.get_by_role("button", name="Import").click()
        page.locator("#import-summary", has_text="1 new patient admitted").wait_for()
    finally:
        desk.close()

    sent = wait_for_mail(mailbox)
    assert sent["To"] == ADDRESS
    text, html = body_of(sent, "text/plain"), body_of(sent, "text/html")
    link = re.search(r"https?://\S+/portal/\S+", text).group(0)
    assert link.startswith(server.base_url) and link in html
    assert "Owner intake" in text

    phone = browser.new_context(**PHONE)
    page = phone.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(link)
        page.locator("h1", has_text=PATIENT).wait_for()
        page.get_by_role("link", name=re.compile("Fill in the form")).click()
        page.locator("h1", has_text="Owner intake").wait_for()
        page.get_by_label("Your name").fill(OWNER)
        page.get_by_label("A phone number we can reach you on today").fill("+44 7700 900555")
        page.get_by_label("Medicines your pet takes now (name and dose)").fill("None")
        page.get_by_role("radio", name="Today", exact=True).check()
        page.get_by_label(re.compile("I agree to the treatment plan")).check()
        draw_with_a_finger(page, page.locator("canvas[data-signature=signature]"))
        page.get_by_role("button", name=re.compile("^Send to ")).click()
        page.locator("[role=status]", has_text="We received this form on").wait_for()
    finally:
        phone.close()

    [(status, client)] = server.query(
        "SELECT f.status, f.filled_by_client FROM patient_forms f JOIN patients p "
        "ON p.id = f.patient_id WHERE p.name = ?", PATIENT)
    assert (status, client) == ("finalised", OWNER)

    vet = browser.new_context(viewport=TABLET)
    page = vet.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, server.base_url, "vet", "vet-demo-1")
        # The form is on the patient's record, as the owner's.
        [(uid,)] = server.query("SELECT uid FROM patients WHERE name = ?", PATIENT)
        page.goto(f"{server.base_url}/patients/{uid}/sheet")
        page.get_by_role("link", name="Forms").click()
        forms = page.locator("main")
        forms.get_by_text("Owner intake").first.wait_for()
        assert f"the owner, {OWNER}, through the client portal" in forms.inner_text()
        # The second flow told the patient's doctor (flows run on the job queue: wait).
        deadline = time.monotonic() + 60
        subject = f"Intake form from {OWNER} for {PATIENT}"
        while True:
            page.goto(f"{server.base_url}/inbox/")
            if page.get_by_text(subject).count():
                break
            assert time.monotonic() < deadline, page.locator("main").inner_text()
            time.sleep(1)
    finally:
        vet.close()
    # The patient's timeline shows the e-mail as sent to the owner.
    [(state, to)] = server.query(
        "SELECT m.status, m.to_address FROM client_messages m JOIN patients p "
        "ON p.id = m.patient_id WHERE p.name = ?", PATIENT)
    assert (state, to) == ("sent", ADDRESS)
