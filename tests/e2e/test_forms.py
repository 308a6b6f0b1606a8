"""A consent form on a tablet while the server is gone: filled, signed with a finger on the
canvas, finalised, kept over a reload, then synced once when the server is back."""

import re

import pytest

from .conftest import attention_list, own_server, wait_outbox
from .helpers import draw_signature, fill_consent, outbox, set_up_tablet, wait_cached

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the test stops and restarts it."""
    yield from own_server(tmp_path_factory, "kiosk-forms")


def test_a_consent_form_is_filled_and_signed_offline_then_synced(browser, server):
    context, page, device = set_up_tablet(browser, server)
    base = server.base_url
    patient_uid, name = server.query(
        "SELECT uid, name FROM patients WHERE status = 'admitted' ORDER BY id LIMIT 1")[0]
    (template_uid,) = server.query(
        "SELECT uid FROM form_templates WHERE name = 'Anaesthesia consent'")[0]
    listing = f"/patients/{patient_uid}/forms"
    blank = f"{listing}/new/{template_uid}"
    page.goto(base + listing)
    wait_cached(page, listing)
    wait_cached(page, blank)
    wait_cached(page, "/static/js/forms.js")

    context.set_offline(True)
    server.stop()
    try:
        page.goto(base + listing)  # the tablet's copy
        page.get_by_role("button", name="Anaesthesia consent").click()
        page.wait_for_url(re.compile(re.escape(blank) + "$"))
        page.locator("h1", has_text=name).wait_for()
        fill_consent(page)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Finalise").click()
        # The tick box is required: nothing is finalised, and the field says why.
        page.locator(".form-field[data-key=risks] .field-error",
                     has_text="is required before the form is finalised").wait_for()
        page.locator("input[name=risks]").check()
        draw_signature(page)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Finalise").click()
        page.locator("#form-status", has_text="Finalised on this tablet").wait_for()
        form_uid = page.url.split("#", 1)[1]
        ops = outbox(page)
        assert [op["name"] for op in ops] == ["form.start", "form.fill", "form.fill",
                                              "form.finalise"]
        assert ops[0]["args"] == {"form": form_uid, "patient": patient_uid,
                                  "template": template_uid, "version": 1}
        assert {op["patient"] for op in ops} == {patient_uid}  # for the discharge checks
        assert ops[2]["args"]["values"]["risks"] is True
        assert ops[2]["args"]["values"]["signature"].startswith("data:image/png;base64,")

        page.reload()  # offline, from the tablet's copy, with what waits drawn over it
        page.locator("#form-status", has_text="Finalised on this tablet").wait_for()
        assert page.locator("textarea[name=owner_name]").input_value() == "Alex Client"
        assert page.locator(".signature-current img.signature").count() == 1

        server.start()
        context.set_offline(False)
        wait_outbox(page, timeout=30_000)
        page.wait_for_url(re.compile(rf"/forms/{form_uid}$"), timeout=30_000)
        page.locator("header.form-head", has_text="locked").wait_for()
        assert attention_list(page) == []
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
        context.close()

    device_id = int(device["id"][2:])
    assert server.query("SELECT name, status FROM sync_ops WHERE device_id = ? "
                        "AND status != 'duplicate' ORDER BY seq", device_id) == [
        ("form.start", "applied"), ("form.fill", "applied"), ("form.fill", "applied"),
        ("form.finalise", "applied")]
    assert server.query("SELECT status FROM patient_forms WHERE uid = ?",
                        form_uid) == [("finalised",)]
    keys = server.query("SELECT e.key FROM form_entries e JOIN patient_forms f "
                        "ON f.id = e.form_id WHERE f.uid = ? ORDER BY e.key", form_uid)
    assert [k for (k,) in keys] == ["cpr", "owner_name", "owner_phone", "procedure",
                                    "risks", "signature"]
    assert server.query("SELECT count(*) FROM documents WHERE kind = 'form' "
                        "AND source_uid = ?", form_uid) == [(1,)]
