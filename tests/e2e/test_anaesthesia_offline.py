"""Anaesthesia sheets on tablets in a real browser: two tablets with the server gone each
start a sheet for the same patient and record on it, one finalises; back online, both
flush and the server holds one merged sheet with every entry exactly once. Also: an
unusual value is confirmed on the tablet before it is queued, and a sheet's page opens
from the tablet's copy after a reload with the server down."""

import json
import re
import time

import pytest
from playwright.sync_api import expect

from kiosk.anaesthesia.entries import MESSAGES
from kiosk.core.validate import ERR_NOT_A_NUMBER

from .conftest import LIVE_CONNECTED, attention_list, own_server, wait_outbox
from .helpers import (
    check_merged,
    outbox,
    press_event,
    record_drug,
    record_ops_of,
    record_vitals,
    resend,
    set_up,
    start_sheet,
    wait_cached,
)

pytestmark = pytest.mark.e2e

# Between the two tablets' vitals: more than the difference of two requests' clock skews
# (under a second each), so the order by time on the server is the order they happened.
APART = 2.2


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the tests stop and restart it to make it unreachable."""
    yield from own_server(tmp_path_factory, "kiosk-anaesthesia-offline")


def admitted_patient(server, index: int) -> tuple[int, str, str]:
    """An admitted patient without an anaesthesia sheet (id, uid, name)."""
    rows = server.query(
        "SELECT p.id, p.uid, p.name FROM patients p WHERE p.status = 'admitted' AND NOT "
        "EXISTS (SELECT 1 FROM anaesthesia_sheets s WHERE s.patient_id = p.id) ORDER BY p.id")
    assert len(rows) > index, "the demo clinic has too few admitted patients"
    return rows[index]


def wait_cached_with(page, path: str, text: str, timeout: float = 30.0) -> None:
    """Until the service worker's copy of `path` holds `text`."""
    deadline = time.monotonic() + timeout
    script = ("([p, t]) => caches.keys().then(ks => Promise.all(ks.map(k => caches.open(k)"
              ".then(c => c.match(p)).then(r => r ? r.text() : '')))).then(ts => "
              "ts.some(x => x.includes(t)))")
    while not page.evaluate(script, [path, text]):
        assert time.monotonic() < deadline, f"the kept copy of {path} never held {text!r}"
        time.sleep(0.3)


def record_ops(page) -> list[dict]:
    return record_ops_of(outbox(page))


def test_two_tablets_offline_merge_into_one_sheet(browser, server):
    _pid, uid, name = admitted_patient(server, 0)
    ctx_a, a, dev_a = set_up(browser, server, number=3, colour="green", username="vet",
                             password="vet-demo-1")
    ctx_b, b, dev_b = set_up(browser, server, number=4, colour="red", username="tech",
                             password="tech-demo-1")
    page_path = f"/patients/{uid}/anaesthesia"
    for page in (a, b):
        page.goto(server.base_url + page_path)
        for path in (page_path, "/tablet/anaesthesia-shell", "/static/js/offline-anaesthesia.js"):
            wait_cached(page, path)
    ctx_a.set_offline(True)
    ctx_b.set_offline(True)
    server.stop()
    try:
        offline_part(server, ctx_a, a, dev_a, ctx_b, b, dev_b, uid, name)
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
        ctx_a.close()
        ctx_b.close()


def offline_part(server, ctx_a, a, dev_a, ctx_b, b, dev_b, uid, name):
    """Both tablets record with the server gone; then B, then A, flush; then the checks."""
    for page in (a, b):
        page.reload()  # from the service worker's copy
        page.locator("h1", has_text=name).wait_for()
    sheet_a = start_sheet(a, "Dental, extractions", "II")
    a.locator("#shell-title", has_text=name).wait_for()
    a.locator('dd[data-header="procedure"]', has_text="Dental, extractions").wait_for()
    sheet_b = start_sheet(b)  # each tablet starts its own: neither knows of the other's
    assert sheet_a != sheet_b

    # An unusual value is asked about on the tablet, before anything is queued.
    waiting = len(outbox(a))
    form = a.locator("form.vitals-form")
    form.locator("input[name=hr]").fill("900")
    form.locator("input[name=spo2]").fill("97")
    form.get_by_role("button", name=re.compile("Record vitals")).click()
    form.locator(".field-error", has_text="HR 900 bpm is outside the usual 20–300").wait_for()
    assert len(outbox(a)) == waiting
    form.locator(".outbox-confirm input[name=confirm][value=hr]").check()
    form.get_by_role("button", name=re.compile("Record vitals")).click()
    a.locator("#vitals tr.waiting", has_text="900").wait_for()
    confirmed_entry = record_ops(a)[-1]
    assert confirmed_entry["args"]["confirmed"] == ["hr"]
    assert confirmed_entry["args"]["data"] == {"hr": "900", "spo2": "97"}
    assert form.locator(".field-error").count() == 0
    time.sleep(APART)

    record_vitals(b, hr=88, spo2=98, etco2=38)
    time.sleep(APART)
    record_vitals(a, hr=84)
    # Carried forward: the waiting row's other values stay in the form.
    assert a.locator("form.vitals-form input[name=spo2]").input_value() == "97"
    time.sleep(APART)
    record_vitals(b, hr=90)
    assert b.locator("form.vitals-form input[name=etco2]").input_value() == "38"
    expect(b.locator("#vitals tr.waiting")).to_have_count(2)
    expect(b.locator("#vitals tr.waiting", has_text="Priya Tech")).to_have_count(2)  # by name
    record_drug(a, "Medetomidine", "0.01 mg/kg")
    record_drug(b, "Propofol", "4 mg/kg")
    press_event(a, "Induction")
    press_event(b, "Intubation")

    # B's page after a reload offline: still its sheet, drawn from the outbox.
    b.reload()
    b.locator("#shell-title", has_text=name).wait_for()
    assert b.locator("#vitals tr.waiting").count() == 2
    b.locator("#outbox-banner", has_text="Offline").wait_for()
    # The shell's form starts from the waiting rows (the server never saw any).
    assert b.locator("form.vitals-form input[name=hr]").input_value() == "90"
    assert b.locator("form.vitals-form input[name=etco2]").input_value() == "38"

    # A finalises offline; what follows is an addendum to be.
    a.once("dialog", lambda dialog: dialog.accept())
    a.get_by_role("button", name="Finalise sheet").click()
    a.locator("#sheet-status", has_text="finalised — PDF when synced").wait_for()
    a.locator("#finalise", has_text="Finalised — PDF when synced").wait_for()
    assert a.locator("form.finalise").is_hidden()
    record_vitals(a, hr=70)
    a.locator("#addenda li.waiting", has_text="Addendum — waiting to sync").wait_for()
    assert a.locator("#addenda li.waiting", has_text="HR 70 bpm").count() == 1

    ops_a, ops_b = outbox(a), outbox(b)
    assert [op["name"] for op in ops_a] == ["anaesthesia.start"] + ["anaesthesia.record"] * 4 + [
        "anaesthesia.finalise", "anaesthesia.record"]
    assert [op["name"] for op in ops_b] == ["anaesthesia.start"] + ["anaesthesia.record"] * 4

    # The server comes back: B flushes first, then A.
    server.start()
    for ctx, page, sheet in ((ctx_b, b, sheet_b), (ctx_a, a, sheet_a)):
        ctx.set_offline(False)
        wait_outbox(page, timeout=30_000)
        page.wait_for_url(re.compile(rf"/anaesthesia/{sheet}$"))
        assert attention_list(page) == []

    merged = dict(first=ops_b, addenda={record_ops_of(ops_a)[-1]["args"]["entry"]})
    check_vitals_order(check_merged(server, dev_a, dev_b, ops_a, ops_b, uid, **merged),
                       dev_a, dev_b)

    # A's page is the server's now: the merged sheet, nothing waiting.
    a.locator("#vitals table.vitals-grid tbody tr").nth(3).wait_for()
    assert a.locator("#anaesthesia .waiting").count() == 0
    assert a.locator("#vitals table.vitals-grid tbody tr").count() == 4
    assert a.locator("#sheet-status", has_text="finalised").count() == 1

    # Sent again (an answer lost): duplicates, nothing doubled.
    answer = resend(server, dev_a, ops_a)
    assert {r["status"] for r in answer["results"]} == {"duplicate"}
    check_merged(server, dev_a, dev_b, ops_a, ops_b, uid, **merged)


def check_vitals_order(stored, dev_a, dev_b):
    """This test's vitals, by time: A's confirmed HR, B, A, B, then A's addendum."""
    device_a, device_b = int(dev_a["id"][2:]), int(dev_b["id"][2:])
    vitals = [(e[2], json.loads(e[4] or "[]"), e[5]) for e in stored if e[1] == "vitals"]
    assert vitals == [(device_a, ["hr"], 0), (device_b, [], 0), (device_a, [], 0),
                      (device_b, [], 0), (device_a, [], 1)]


def test_a_sheet_started_online_opens_offline_after_a_reload(browser, server):
    _pid, uid, name = admitted_patient(server, 1)
    context, page, _device = set_up(browser, server, number=5, colour="blue", username="vet",
                                   password="vet-demo-1")
    try:
        page.goto(f"{server.base_url}/patients/{uid}/anaesthesia")
        wait_cached(page, f"/patients/{uid}/anaesthesia")
        # Online the same path: an op, sent at once, then the server's own page.
        form = page.locator("form.anaesthesia-start")
        form.locator("input[name=procedure]").fill("Cast change")
        form.locator("select[name=asa]").select_option("I")
        form.get_by_role("button", name="Start anaesthesia sheet").click()
        page.wait_for_url(re.compile(r"/anaesthesia/[0-9a-f-]{36}$"))
        sheet = page.url.rsplit("/", 1)[1]
        assert len(outbox(page)) == 0
        record_vitals(page, hr=100, spo2=99)
        page.locator("#vitals table.vitals-grid tbody tr[data-values]:not([data-overlay])",
                     has_text="100").wait_for()
        # The row may come by the live path before the sync's answer is read: the
        # outbox empties, then the waiting row goes.
        wait_outbox(page)
        expect(page.locator("#vitals tr.waiting")).to_have_count(0)
        assert server.query("SELECT count(*) FROM anaesthesia_entries e JOIN "
                            "anaesthesia_sheets s ON s.id = e.sheet_id WHERE s.uid = ? "
                            "AND e.kind = 'vitals'", sheet) == [(1,)]
        wait_cached(page, f"/anaesthesia/{sheet}")
        wait_cached_with(page, f"/anaesthesia/{sheet}", '"hr": "100"')

        context.set_offline(True)
        server.stop()
        page.reload()
        page.locator("h1", has_text=name).wait_for()
        page.locator('dd[data-header="procedure"]', has_text="Cast change").wait_for()
        assert page.locator("form.vitals-form input[name=hr]").input_value() == "100"
        # What is wrong is said in the server's words (given to the page), nothing queued.
        drug_form = page.locator('form[data-kind="drug"]')
        drug_form.locator("input[name=drug]").fill("Butorphanol")
        drug_form.locator("input[name=dose]").fill("   ")
        drug_form.get_by_role("button", name=re.compile("Record drug")).click()
        drug_form.locator(".outbox-form-error", has_text=MESSAGES["dose_required"]).wait_for()
        vitals_form = page.locator("form.vitals-form")
        vitals_form.locator("input[name=hr]").fill("fast")
        vitals_form.get_by_role("button", name=re.compile("Record vitals")).click()
        vitals_form.locator(".outbox-form-error",
                            has_text=ERR_NOT_A_NUMBER.format(label="HR")).wait_for()
        assert outbox(page) == [] and page.locator("#drug tr.waiting").count() == 0
        vitals_form.locator("input[name=hr]").fill("100")
        record_drug(page, "Butorphanol", "0.2 mg/kg")
        page.reload()
        page.locator("#drug tr.waiting", has_text="Butorphanol").wait_for()

        server.start()
        context.set_offline(False)
        wait_outbox(page, timeout=30_000)
        page.locator("#drug table.drugs tbody tr:not(.waiting)", has_text="Butorphanol").wait_for()
        assert server.query("SELECT count(*) FROM anaesthesia_entries e JOIN "
                            "anaesthesia_sheets s ON s.id = e.sheet_id WHERE s.uid = ? "
                            "AND e.kind = 'drug'", sheet) == [(1,)]
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
        context.close()


def test_online_tablets_see_each_others_entries_without_a_reload(browser, server):
    """Two tablets on one sheet, online: what A records and A's finalising appear on B
    live, and what B is typing meanwhile stays as typed."""
    _pid, uid, name = admitted_patient(server, 0)
    ctx_a, a, _dev_a = set_up(browser, server, number=5, colour="blue", username="vet",
                              password="vet-demo-1")
    ctx_b, b, _dev_b = set_up(browser, server, number=6, colour="orange", username="tech",
                              password="tech-demo-1")
    try:
        a.goto(f"{server.base_url}/patients/{uid}/anaesthesia")
        form = a.locator("form.anaesthesia-start")
        form.locator("input[name=procedure]").fill("Lump removal")
        form.locator("select[name=asa]").select_option("II")
        form.get_by_role("button", name="Start anaesthesia sheet").click()
        # Online the start syncs at once, and the tablet's page gives way to the server's.
        a.wait_for_url(re.compile(r"/anaesthesia/[0-9a-f-]{36}$"), timeout=30_000)
        sheet = a.url.rsplit("/", 1)[1]
        b.goto(f"{server.base_url}/anaesthesia/{sheet}")
        b.locator("h1", has_text=name).wait_for()
        b.wait_for_function(LIVE_CONNECTED)
        b.evaluate("window.sameDocument = true")
        b.locator('form[data-kind="drug"] input[name=drug]').fill("Ketamine")
        b.locator("form.vitals-form input[name=hr]").fill("77")

        record_vitals(a, hr=95, spo2=97)
        b.locator("#vitals table.vitals-grid tbody tr:not(.waiting)", has_text="95").wait_for()
        b.locator("#vitals figure.anaesthesia-chart").wait_for()
        assert b.locator('form[data-kind="drug"] input[name=drug]').input_value() == "Ketamine"
        assert b.locator("form.vitals-form input[name=hr]").input_value() == "77"
        # A changes the team: B's header and its (untouched) header form follow.
        a_header = a.locator('form[data-kind="header"]')
        a_header.locator("input[name=team]").fill("Dr Okafor, Sam")
        a_header.get_by_role("button", name="Save").click()
        b.locator('dd[data-header="team"]', has_text="Dr Okafor, Sam").wait_for()
        b.wait_for_function("() => document.querySelector('form[data-kind=header] "
                            "input[name=team]').value === 'Dr Okafor, Sam'")
        # B's own change syncs too: its rows are the server's, the drug it types stays.
        b.locator("form.vitals-form").get_by_role("button", name=re.compile("Record")).click()
        b.locator("#vitals table.vitals-grid tbody tr:not(.waiting)", has_text="77").wait_for()
        wait_outbox(b)
        assert b.locator('form[data-kind="drug"] input[name=drug]').input_value() == "Ketamine"

        a.on("dialog", lambda dialog: dialog.accept())
        a.get_by_role("button", name="Finalise sheet").click()
        b.locator("#sheet-status", has_text="finalised").wait_for()
        b.locator(".archived-list a", has_text="Anaesthesia record").wait_for(timeout=60_000)
        assert b.get_by_role("button", name="Finalise sheet").count() == 0
        assert "(addendum)" in b.locator("form.vitals-form button[type=submit]").inner_text()
        assert b.evaluate("window.sameDocument") is True  # never reloaded
        assert b.locator('form[data-kind="drug"] input[name=drug]').input_value() == "Ketamine"
    finally:
        ctx_a.close()
        ctx_b.close()
