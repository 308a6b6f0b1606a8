"""Discharging offline, in a real browser: two tablets carry one patient with the server
gone; both record on its anaesthesia sheet, tablet A finalises the sheet, fills and signs
the consent form and discharges the patient. Back online, the server holds one merged
sheet with every entry once, the sheet's, its addenda's, the form's and the discharge
summary's PDFs archived, and the patient discharged exactly once; a resend changes
nothing."""

import re
import time

import pytest

from .conftest import outbox_snapshot, own_server, wait_outbox
from .helpers import (
    check_merged,
    draw_signature,
    fill_consent,
    orders_stopped,
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

SYNC_TIMEOUT_MS = 30_000
DOCUMENTS_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the test stops and restarts it to make it unreachable."""
    yield from own_server(tmp_path_factory, "kiosk-discharge-offline")


def quiet_patient(server) -> tuple[int, str, str]:
    """An admitted patient with nothing that would hold a discharge: no anaesthesia sheet,
    no form, no document, and (its orders stopped) no task left to become overdue (id, uid,
    name)."""
    rows = server.query(
        "SELECT p.id, p.uid, p.name FROM patients p WHERE p.status = 'admitted' "
        "AND NOT EXISTS (SELECT 1 FROM anaesthesia_sheets s WHERE s.patient_id = p.id) "
        "AND NOT EXISTS (SELECT 1 FROM patient_forms f WHERE f.patient_id = p.id) "
        "AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.patient_id = p.id) ORDER BY p.id")
    assert rows, "the demo clinic has no admitted patient with nothing pending"
    orders_stopped(server, rows[0][1])
    return rows[0]


def synced(page) -> None:
    """Until the tablet's outbox is empty and nothing waits in its "needs attention" list."""
    from playwright.sync_api import Error as PlaywrightError

    wait_outbox(page, timeout=SYNC_TIMEOUT_MS)
    # Once synced, the page gives way to the server's: read the list on whichever page.
    deadline = time.monotonic() + 15
    while True:
        try:
            page.wait_for_load_state()
            kept = outbox_snapshot(page)
            left = [kept["ops"], kept["attention"]]
            break
        except PlaywrightError:  # navigated meanwhile
            assert time.monotonic() < deadline, "the page never settled after the sync"
    assert left == [[], []]


def documents_ready(server, patient_id: int, kinds: set[str]) -> list[tuple]:
    """Once the documents worker has archived every PDF of these kinds for the patient:
    every document of the patient as (kind, source uid, status, first bytes of the PDF)."""
    deadline = time.monotonic() + DOCUMENTS_TIMEOUT
    while True:
        rows = server.query(
            "SELECT kind, source_uid, status, substr(pdf, 1, 4) FROM documents "
            "WHERE patient_id = ? ORDER BY id", patient_id)
        ready = {kind for kind, _s, status, _p in rows if status == "ready"}
        # Every document of these kinds made (the worker renders after commit, one by one).
        if ready >= kinds and all(status == "ready" for kind, _s, status, _p in rows
                                  if kind in kinds):
            return rows
        assert time.monotonic() < deadline, f"the PDFs were not archived in time: {rows}"
        time.sleep(0.5)


def addenda_of(ops_a, ops_b) -> set[str]:
    """A synced first: its entries after its finalise, and every one of B's, are addenda."""
    finalised_at = [op["name"] for op in ops_a].index("anaesthesia.finalise")
    return {op["args"]["entry"] for op in record_ops_of(ops_a[finalised_at:] + ops_b)}


def test_a_patient_discharged_offline_keeps_both_tablets_work(browser, server):
    patient_id, uid, name = quiet_patient(server)
    (template_uid,) = server.query(
        "SELECT uid FROM form_templates WHERE name = 'Anaesthesia consent'")[0]
    ctx_a, a, dev_a = set_up(browser, server, number=3, colour="green", username="vet",
                             password="vet-demo-1")
    ctx_b, b, dev_b = set_up(browser, server, number=4, colour="red", username="tech",
                             password="tech-demo-1")
    paths = {"sheet": f"/patients/{uid}/sheet", "anaesthesia": f"/patients/{uid}/anaesthesia",
             "forms": f"/patients/{uid}/forms",
             "consent": f"/patients/{uid}/forms/new/{template_uid}"}
    for page in (a, b):
        page.goto(server.base_url + paths["sheet"])
        for path in (*paths.values(), "/tablet/sheet-shell", "/tablet/anaesthesia-shell",
                     "/static/js/sheet.js", "/static/js/offline-anaesthesia.js",
                     "/static/js/forms.js"):
            wait_cached(page, path)
    ctx_a.set_offline(True)
    ctx_b.set_offline(True)
    server.stop()
    try:
        ops_a, ops_b, form_uid = offline_part(server, a, b, paths, name)
        # The server comes back and A syncs alone first, then B. A reaching it first is
        # the hard case the discharge must survive: the server cannot know that B still
        # holds work for the patient (B never said so), so the discharge goes through,
        # and B's entries, made before it, arrive after it and after the finalise; they
        # must still land on the sheet (as addenda), never be refused. B first would let
        # its entries land before the finalise; both together would make the order, and
        # so which entries are addenda, a matter of chance.
        server.start()
        ctx_a.set_offline(False)
        synced(a)
        # A's page is the server's sheet now: discharged, no second discharge offered.
        a.locator(".patient-head .tag", has_text="Discharged").filter(
            has_not_text="waiting").wait_for()
        assert a.get_by_role("button", name="Discharge").count() == 0
        ctx_b.set_offline(False)
        synced(b)
        # B's page is the server's merged sheet, with B's entries on it (after A's
        # finalise reached the server: addenda, like A's own last one).
        b.wait_for_url(re.compile(rf"/anaesthesia/{ops_b[0]['args']['sheet']}$"))
        b.locator("#addenda li").nth(len(addenda_of(ops_a, ops_b)) - 1).wait_for()
        assert b.locator("#addenda li").count() == len(addenda_of(ops_a, ops_b))
        assert b.locator("#anaesthesia .waiting").count() == 0
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
        ctx_a.close()
        ctx_b.close()

    root_sheet = ops_a[0]["args"]["sheet"]
    merged = dict(first=ops_a, addenda=addenda_of(ops_a, ops_b))
    expected_documents = sorted([("anaesthesia", root_sheet, "ready", b"%PDF"),
                                 ("discharge", uid, "ready", b"%PDF"),
                                 ("form", form_uid, "ready", b"%PDF")])

    def check_everything():
        check_merged(server, dev_a, dev_b, ops_a, ops_b, uid, **merged)
        rows = documents_ready(server, patient_id,
                               {"anaesthesia", "addendum", "form", "discharge"})
        assert sorted(r for r in rows if r[0] != "addendum") == expected_documents  # one each
        # The addenda are archived too: each in one PDF (one per tablet's sync batch).
        addenda_documents = [r for r in rows if r[0] == "addendum"]
        assert {r[1:] for r in addenda_documents} == {(root_sheet, "ready", b"%PDF")}
        archived = server.query(
            "SELECT e.uid, d.status FROM anaesthesia_entries e JOIN anaesthesia_sheets s "
            "ON s.id = e.sheet_id LEFT JOIN documents d ON d.id = e.document_id "
            "WHERE e.addendum = 1 AND s.patient_id = ?", patient_id)
        assert {e for e, _s in archived} == merged["addenda"]
        assert {status for _e, status in archived} == {"ready"}
        assert 2 <= len(addenda_documents) <= len(merged["addenda"])  # A's and B's
        # The sheet was archived as it stood when finalised: A's entries, not B's addenda.
        (html,) = server.query("SELECT html FROM documents WHERE kind = 'anaesthesia' "
                               "AND patient_id = ?", patient_id)[0]
        assert "Medetomidine" in html and "Propofol" not in html
        assert server.query("SELECT status FROM patients WHERE id = ?",
                            patient_id) == [("discharged",)]
        assert server.query("SELECT count(*) FROM audit_entries WHERE action = ? AND "
                            "entity_uid = ?", "patient.discharge", uid) == [(1,)]
        assert server.query("SELECT status FROM sync_ops WHERE device_id = ? AND name = ? "
                            "AND status != 'duplicate'", int(dev_a["id"][2:]),
                            "patient.discharge") == [("applied",)]
        assert server.query("SELECT status FROM patient_forms WHERE uid = ?",
                            form_uid) == [("finalised",)]

    check_everything()

    # Sent again (an answer lost): duplicates, nothing doubled.
    answer = resend(server, dev_a, ops_a)
    assert [r["status"] for r in answer["results"]] == ["duplicate"] * len(ops_a)
    check_everything()


def offline_part(server, a, b, paths, name):
    """Both tablets record with the server gone; A finalises, fills the consent form and
    discharges. A's and B's outboxes, and the uid of A's form."""
    base = server.base_url
    a.on("dialog", lambda dialog: dialog.accept())  # every "are you sure?" on A: yes
    for page in (a, b):
        page.goto(base + paths["anaesthesia"])  # from the service worker's copy
        page.locator("h1", has_text=name).wait_for()
    sheet_a = start_sheet(a, "Dental, extractions", "II")
    a.locator('dd[data-header="procedure"]', has_text="Dental, extractions").wait_for()
    sheet_b = start_sheet(b)  # each tablet starts its own: neither knows of the other's
    assert sheet_a != sheet_b
    record_vitals(a, hr=84, spo2=97)
    record_vitals(b, hr=88, spo2=98, etco2=38)
    record_drug(a, "Medetomidine", "0.01 mg/kg")
    record_drug(b, "Propofol", "4 mg/kg")
    press_event(a, "Induction")
    press_event(b, "Intubation")

    # A finalises; what A and B record afterwards are addenda.
    a.get_by_role("button", name="Finalise sheet").click()
    a.locator("#sheet-status", has_text="finalised — PDF when synced").wait_for()
    record_vitals(a, hr=70)
    a.locator("#addenda li.waiting", has_text="Addendum — waiting to sync").wait_for()
    record_vitals(b, hr=92)

    # The consent form, filled and signed on A.
    a.goto(base + paths["forms"])
    a.get_by_role("button", name="Anaesthesia consent").click()
    a.wait_for_url(re.compile(re.escape(paths["consent"]) + "$"))
    a.locator("h1", has_text=name).wait_for()
    fill_consent(a)
    a.locator("input[name=risks]").check()
    draw_signature(a)
    a.get_by_role("button", name="Finalise").click()
    a.locator("#form-status", has_text="Finalised on this tablet").wait_for()
    form_uid = a.url.split("#", 1)[1]

    # The discharge, from A's treatment sheet.
    a.goto(base + paths["sheet"])
    a.locator("h1", has_text=name).wait_for()
    waiting = len(outbox(a))
    a.get_by_role("button", name="Discharge").click()
    a.locator("#discharge-waiting", has_text="Discharged — waiting to sync").wait_for()
    assert len(outbox(a)) == waiting + 1

    ops_a, ops_b = outbox(a), outbox(b)
    assert [op["name"] for op in ops_a] == [
        "anaesthesia.start", *["anaesthesia.record"] * 3, "anaesthesia.finalise",
        "anaesthesia.record", "form.start", "form.fill", "form.finalise",
        "patient.discharge"]
    assert ops_a[-1]["args"] == {"patient": paths["sheet"].split("/")[2]}
    assert [op["name"] for op in ops_b] == ["anaesthesia.start", *["anaesthesia.record"] * 4]
    return ops_a, ops_b, form_uid
