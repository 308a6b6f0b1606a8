"""The client portal on a phone: an owner opens the link of the e-mail asking for the intake
form (recorded through client_message_queue), fills it in, signs with a finger on the
canvas, sends it, sees the thank-you page; the form is on the patient's record, finalised,
as the owner's."""

import base64
import io
import re

import pytest

from tests.support.portal import PHONE, fill_intake, portal_message_on

from .conftest import TABLET, own_server, sign_in

pytestmark = pytest.mark.e2e

PATIENT = "Biscuit"


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the test adds an owner, a form and a message to its database."""
    yield from own_server(tmp_path_factory, "kiosk-portal")


def ink_pixels(data_url: str) -> int:
    """How many dark pixels a stored signature holds (0 for a blank one)."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("LA")
    grey, alpha = image.split()
    inked = Image.eval(grey, lambda v: 255 if v < 128 else 0)
    opaque = Image.eval(alpha, lambda v: 255 if v > 128 else 0)
    return sum(Image.composite(inked, Image.new("L", image.size, 0), opaque).histogram()[255:])


def test_an_owner_fills_and_signs_the_intake_form_on_a_phone(browser, server):
    sent = portal_message_on(server, PATIENT)
    assert sent["link"].startswith(f"{server.base_url}/portal/")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(sent["link"])
        page.locator("h1", has_text=PATIENT).wait_for()
        forms = page.locator("section[aria-labelledby=forms-title]")
        assert "To fill" in forms.inner_text()
        forms.get_by_role("link", name=re.compile("Fill in the form")).click()
        page.locator("h1", has_text="Intake questions").wait_for()
        page.wait_for_load_state("load")  # its stylesheet and script, not the heading alone
        # Nothing wider than the phone, and every control a finger can hit (44 px).
        assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
        heights = page.locator("form.portal-form").evaluate(
            "f => [...f.querySelectorAll('textarea, input:not([type=hidden]):not([type=radio])"
            ":not([type=checkbox]), select, button, label.option, .check label')]"
            ".map(e => e.getBoundingClientRect().height)")
        assert heights and min(heights) >= 44, heights

        canvas = page.locator("canvas[data-signature=signature]")
        canvas.wait_for(state="visible")  # the script shows the box (hidden without it)
        fill_intake(page)
        assert canvas.get_attribute("data-dirty") == "1"
        page.get_by_role("button", name=re.compile("^Send to ")).click()

        page.locator("[role=status]", has_text="We received this form on").wait_for()
        assert "Thank you" in page.locator("main").inner_text()
        page.get_by_role("link", name=f"Back to {PATIENT}'s messages").click()
        page.locator(".state-done", has_text="Received on").wait_for()
    finally:
        context.close()

    [(form_uid, status, started_by, finalised_by, client)] = server.query(
        "SELECT f.uid, f.status, f.started_by_id, f.finalised_by_id, f.filled_by_client "
        "FROM patient_forms f JOIN patients p ON p.id = f.patient_id WHERE p.uid = ?",
        sent["patient"])
    assert (status, started_by, finalised_by, client) == ("finalised", None, None,
                                                          sent["owner"])
    values = dict(server.query("SELECT e.key, e.value FROM form_entries e JOIN patient_forms "
                               "f ON f.id = e.form_id WHERE f.uid = ?", form_uid))
    assert values["eating"] == '"Well, twice a day"' and values["vomiting"] == '"Once"'
    assert ink_pixels(values["signature"].strip('"')) > 50  # the finger's stroke, not a blank
    assert server.query("SELECT count(*) FROM client_messages m JOIN patient_forms f "
                        "ON f.id = m.form_id WHERE m.uid = ? AND f.uid = ?",
                        sent["message"], form_uid) == [(1,)]

    staff = browser.new_context(viewport=TABLET)
    page = staff.new_page()
    try:
        sign_in(page, server.base_url, "vet", "vet-demo-1")
        page.goto(f"{server.base_url}/patients/{sent['patient']}/forms")
        row = page.locator("#form-list li", has_text="Intake questions")
        assert f"by the owner, {sent['owner']}, through the client portal" in row.inner_text()
        assert "finalised" in row.inner_text()
    finally:
        staff.close()


def test_without_javascript_the_owner_signs_by_typing_their_name(browser, server):
    sent = portal_message_on(server, "Mittens")
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(sent["link"])
        page.get_by_role("link", name=re.compile("Fill in the form")).click()
        assert not page.locator("canvas[data-signature=signature]").is_visible()
        page.get_by_label("How is your pet eating?").fill("Not much")
        page.get_by_role("radio", name="No", exact=True).check()
        page.get_by_label("I agree to the treatment plan we discussed").check()
        page.get_by_role("button", name=re.compile("^Send to ")).click()
        # The signature was missing: the form again, the error by the field, nothing sent.
        error = page.locator("#f-signature-error")
        assert "Your signature" in error.inner_text()
        assert page.get_by_label("How is your pet eating?").input_value() == "Not much"
        page.get_by_label("sign by typing your full name").fill(sent["owner"])
        page.get_by_role("button", name=re.compile("^Send to ")).click()
        page.locator("[role=status]", has_text="We received this form on").wait_for()
    finally:
        context.close()
    [(signature,)] = server.query(
        "SELECT e.value FROM form_entries e JOIN patient_forms f ON f.id = e.form_id "
        "JOIN patients p ON p.id = f.patient_id WHERE p.uid = ? AND e.key = 'signature'",
        sent["patient"])
    assert ink_pixels(signature.strip('"')) > 50  # the name, drawn on the server
