"""Screens staff stumbled on, in a real browser: a vet who unlocked a tablet with her PIN
discharges from the Documents → Discharge page; the sync dashboard never says "synced"
without each tablet's own, recent word; a conflict says what happened, to whom, by whom,
and offers keep, replace and note."""

import json

import pytest

from kiosk.staff.levels import level_name
from tests.support.server import KioskServer

from .conftest import TABLET, WALL, serving, sign_in, wait_outbox
from .helpers import orders_stopped, start_sheet, unlock

pytestmark = pytest.mark.e2e

# How long a tablet's report of an empty outbox counts as "all sent" on this server: short,
# so that the test sees a confirmation go stale without waiting minutes.
CONFIRM_SECONDS = 10
SYNC_TIMEOUT_MS = 30_000
# A tablet's heartbeat comes every minute; the dashboard redraws on each.
HEARTBEAT_WAIT_MS = 75_000


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own, with a short confirmation window for the dashboard."""
    yield from serving(KioskServer(tmp_path_factory.mktemp("kiosk-staff-screens"),
                                   env={"KIOSK_SYNC_CONFIRM_SECONDS": str(CONFIRM_SECONDS)}))


def paired_tablet(browser, server, *, number: int, colour: str):
    """A tablet-sized page set up through /tablet#id.token, nobody signed in on the server:
    (context, page, device id)."""
    out = server.kiosk("devices", "add", "--name", f"Ward tablet {number}", "--colour", colour,
                       "--number", str(number))
    device = json.loads(out.strip().splitlines()[-1])
    context = browser.new_context(viewport=TABLET, has_touch=True)
    page = context.new_page()
    # Right after pairing, the tablet's service worker fetches every page it keeps for an
    # outage, so the server answers more slowly for a while.
    page.set_default_timeout(30_000)
    page.goto(f"{server.base_url}/tablet#{device['id']}.{device['token']}")
    page.locator("#tablet-status", has_text="This tablet is").wait_for()
    page.goto(f"{server.base_url}/patients/")
    page.locator("#lock-screen h1", has_text="Locked").wait_for()
    return context, page, device["id"]


def outbox_empty(page) -> None:
    """Until the tablet's outbox is empty (a send held up by a busy server is retried, with
    a back-off, so allow for a heartbeat's worth of waiting)."""
    wait_outbox(page, timeout=HEARTBEAT_WAIT_MS)


def quiet_patient(server, skip: int = 0) -> tuple[int, str, str]:
    """An admitted patient with nothing that would hold a discharge (id, uid, name)."""
    rows = server.query(
        "SELECT p.id, p.uid, p.name FROM patients p WHERE p.status = 'admitted' "
        "AND NOT EXISTS (SELECT 1 FROM anaesthesia_sheets s WHERE s.patient_id = p.id) "
        "AND NOT EXISTS (SELECT 1 FROM patient_forms f WHERE f.patient_id = p.id) "
        "AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.patient_id = p.id) ORDER BY p.id")
    assert len(rows) > skip, "the demo clinic has too few admitted patients with nothing pending"
    orders_stopped(server, rows[skip][1])  # no task left to become overdue
    return rows[skip]


def test_a_vet_unlocked_by_pin_discharges_from_the_documents_page(browser, server):
    patient_id, uid, name = quiet_patient(server)
    context, page, device_id = paired_tablet(browser, server, number=7, colour="green")
    try:
        unlock(page, "Dr Sam Okafor", "555555")  # level 5: may discharge
        # The tablet's top bar names her level as the staff pages do, not "level 5".
        who = page.locator("#lock-person").inner_text().strip()
        assert who == f"Dr Sam Okafor · {level_name(5)}" and level_name(5) != "Level 5", who
        page.goto(f"{server.base_url}/patients/{uid}/documents")
        page.get_by_role("link", name="Discharge").click()
        page.locator("h1", has_text=f"Discharge {name}").wait_for()
        page.locator("html[data-binder=on]").wait_for(state="attached")  # the page's modules
        page.get_by_role("button", name=f"Discharge {name}").click()
        outbox_empty(page)
        # The page says how it went, by itself, once the server has the discharge.
        page.locator("#discharge", has_text="Discharged").wait_for(timeout=SYNC_TIMEOUT_MS)
        assert "you are level 0" not in page.content()
        assert server.query("SELECT status FROM patients WHERE id = ?", patient_id) == \
            [("discharged",)]
        (user_id,) = server.query("SELECT id FROM users WHERE name = 'Dr Sam Okafor'")[0]
        assert server.query(
            "SELECT name, user_ref, status FROM sync_ops WHERE device_id = ?",
            int(device_id[2:])) == [("patient.discharge", f"u_{user_id}", "applied")]
    finally:
        context.close()


def test_edit_patient_on_a_tablet_opens_without_a_sign_in(browser, server):
    _id, uid, name = quiet_patient(server, skip=2)
    context, page, device_id = paired_tablet(browser, server, number=9, colour="purple")
    try:
        unlock(page, "Dr Sam Okafor", "555555")
        page.goto(f"{server.base_url}/patients/{uid}/sheet")
        page.get_by_role("link", name="Edit patient").click()
        page.locator("h1", has_text=f"Edit {name}").wait_for()
        assert "/login" not in page.url
        page.locator("input[name=weight_kg]").fill("21.4")
        saver = page.locator("fieldset.tablet-saver")
        saver.locator("select[name=saved_by]").select_option(label="Dr Sam Okafor")
        saver.locator("input[name=pin]").fill("555555")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(f"**/patients/{uid}/sheet")
        (user_id,) = server.query("SELECT id FROM users WHERE name = 'Dr Sam Okafor'")[0]
        assert server.query("SELECT weight_kg FROM patients WHERE uid = ?", uid) == [(21.4,)]
        assert server.query(
            "SELECT user_id, device_id FROM audit_entries WHERE action = 'patient.update' "
            "ORDER BY id DESC LIMIT 1") == [(user_id, int(device_id[2:]))]
    finally:
        context.close()


def test_the_dashboard_never_says_synced_without_the_tablets_recent_word(browser, server):
    desk = browser.new_context(viewport=WALL)
    manager = desk.new_page()
    manager.set_default_timeout(15_000)
    sign_in(manager, server.base_url, "manager", "manager-demo")
    context, page, device_id = paired_tablet(browser, server, number=8, colour="red")
    row = manager.locator(f"#sync-{device_id[2:]}")
    try:
        unlock(page, "Priya Tech", "3333")
        uid = quiet_patient(server, skip=1)[1]
        page.goto(f"{server.base_url}/patients/{uid}/sheet")
        outbox_empty(page)
        manager.goto(f"{server.base_url}/devices/sync")
        # Just heard from (a request, or the next minute's heartbeat, whose poke redraws
        # the page), its outbox empty: all sent, with the time it said so.
        row.locator(".sync-outbox", has_text="all sent (confirmed").wait_for(
            timeout=HEARTBEAT_WAIT_MS)
        # The tablet goes offline and records a change: the dashboard cannot know, so
        # once its last word is older than the window it stops saying "synced" by itself.
        context.set_offline(True)
        notes = page.locator("#notes")
        notes.locator("textarea[name=text]").fill("Ate well")
        notes.get_by_role("button", name="Add note").click()
        notes.locator("li.waiting", has_text="Ate well").wait_for()
        row.locator(".sync-outbox", has_text="not heard since").wait_for(
            timeout=(CONFIRM_SECONDS + 40) * 1000)
        assert row.get_attribute("data-state") == "silent"
        verdict = manager.locator(".sync-verdict")
        assert "synced" not in verdict.inner_text().replace("Not confirmed synced", "")
        assert manager.locator(".sync-verdict.ok").count() == 0
        # Back online, the tablet sends its change and says its outbox is empty again.
        context.set_offline(False)
        outbox_empty(page)
        row.locator(".sync-outbox", has_text="all sent (confirmed").wait_for(
            timeout=HEARTBEAT_WAIT_MS)
    finally:
        context.close()
        desk.close()


def sync_one(server, device: dict, seq: int, user: str, args: dict) -> dict:
    """What a tablet's outbox sends for one task completion, sent as it would be."""
    import uuid

    import requests

    now = server.now_z()
    response = requests.post(f"{server.base_url}/api/sync", timeout=10,
                             headers={"Authorization": f"Bearer {device['token']}"}, json={
                                 "device": device["id"], "sent_at": now,
                                 "outbox": {"pending": 1}, "ops": [{
                                     "id": str(uuid.uuid4()), "seq": seq,
                                     "name": "task.complete", "at": now, "user": user,
                                     "args": args}]})
    response.raise_for_status()
    return response.json()["results"][0]


def two_tablets(server, *numbers: int) -> list[dict]:
    """Two tablets added by the CLI (no browser): their ids and tokens."""
    return [json.loads(server.kiosk("devices", "add", "--name", f"Theatre {n}", "--colour",
                                    colour, "--number", str(n)).strip().splitlines()[-1])
            for n, colour in zip(numbers, ("blue", "yellow"), strict=True)]


def conflict_make(server, devices: list[dict], seq: int) -> tuple[str, str, str]:
    """One task done on both tablets, by Priya then by Leo: the second is a conflict.
    (task uid, order name, patient name)"""
    task_uid, order, patient_name = server.query(
        "SELECT t.uid, o.name, p.name FROM tasks t JOIN orders o ON o.id = t.order_id "
        "JOIN patients p ON p.id = t.patient_id WHERE t.status = 'scheduled' "
        "AND o.value_type = 'none' AND p.status = 'admitted' ORDER BY t.due_at LIMIT 1")[0]
    people = dict(server.query("SELECT name, id FROM users"))
    first = sync_one(server, devices[0], seq, f"u_{people['Priya Tech']}",
                     {"task": task_uid, "value": "given", "note": "calm"})
    second = sync_one(server, devices[1], seq, f"u_{people['Leo Assistant']}",
                      {"task": task_uid, "value": "given late", "note": "restless"})
    assert (first["status"], second["status"]) == ("applied", "conflict")
    return task_uid, order, patient_name


def test_a_task_done_on_two_tablets_is_reviewed_by_name_and_replaced(browser, server):
    devices = two_tablets(server, 11, 12)
    task_uid, order, patient_name = conflict_make(server, devices, 1)
    people = dict(server.query("SELECT name, id FROM users"))

    desk = browser.new_context(viewport=WALL)
    manager = desk.new_page()
    manager.set_default_timeout(15_000)
    try:
        sign_in(manager, server.base_url, "manager", "manager-demo")
        manager.goto(f"{server.base_url}/devices/sync")
        manager.locator(f"#sync-{devices[1]['id'][2:]} a.tag", has_text="1").click()
        card = manager.locator(".conflict-card").first
        card.locator("h2", has_text=f"{patient_name}").wait_for()
        heading = card.locator("h2").inner_text()
        assert f"Task done: {order}, due " in heading
        server_side, tablet_side = card.locator(".conflict-side.server"), \
            card.locator(".conflict-side.tablet")
        assert "Priya Tech" in server_side.inner_text() and "calm" in server_side.inner_text()
        assert "Leo Assistant" in tablet_side.inner_text()
        assert "restless" in tablet_side.inner_text()
        assert "u_" not in card.inner_text() and "task.complete" not in card.inner_text()
        manager.once("dialog", lambda dialog: dialog.accept())
        card.get_by_role("button", name="Replace with the tablet's").click()
        manager.locator(".flash", has_text="now stands").wait_for()
        assert manager.locator(".conflict-card").count() == 0
        assert server.query("SELECT value, note, done_by_id FROM tasks WHERE uid = ?",
                            task_uid) == [("given late", "restless", people["Leo Assistant"])]
        assert server.query("SELECT action FROM audit_entries ORDER BY id DESC LIMIT 2") == \
            [("sync.dismiss",), ("task.completion_stand",)]
    finally:
        desk.close()


def test_a_conflict_is_kept_or_added_as_a_note_from_the_review_page(browser, server):
    """Keep leaves the server's record and marks the tablet's reviewed; note adds the
    tablet's entry to the patient's notes, the record unchanged; each card then goes."""
    devices = two_tablets(server, 13, 14)
    kept_task, kept_order, _kept_patient = conflict_make(server, devices, 1)
    noted_task, noted_order, noted_patient = conflict_make(server, devices, 2)
    people = dict(server.query("SELECT name, id FROM users"))
    record = "SELECT value, note, done_by_id FROM tasks WHERE uid = ?"
    priyas = [("given", "calm", people["Priya Tech"])]
    reviewed = ("SELECT seq, dismissed_at IS NOT NULL FROM sync_ops WHERE device_id = ? "
                "ORDER BY seq")
    tablet_id = int(devices[1]["id"][2:])
    notes_before = server.query("SELECT count(*) FROM notes")[0][0]

    desk = browser.new_context(viewport=WALL)
    manager = desk.new_page()
    manager.set_default_timeout(15_000)
    try:
        sign_in(manager, server.base_url, "manager", "manager-demo")
        manager.goto(f"{server.base_url}/devices/sync")
        manager.locator(f"#sync-{devices[1]['id'][2:]} a.tag", has_text="2").click()
        cards = manager.locator(".conflict-card")
        cards.nth(1).wait_for()
        # Told apart by the tablet's change number: the two tasks may be doses of one order.
        kept = cards.filter(has_text="(change #1)")
        assert kept.count() == 1
        assert f"{kept_order}, due" in kept.locator("h2").inner_text()
        kept.get_by_role("button", name="Keep the server's").click()
        manager.locator(".flash", has_text="Kept the server's record").wait_for()
        assert cards.count() == 1
        assert server.query(record, kept_task) == priyas
        assert server.query(reviewed, tablet_id) == [(1, 1), (2, 0)]
        assert server.query("SELECT count(*) FROM notes")[0][0] == notes_before

        noted = cards.filter(has_text="(change #2)")
        assert f"{noted_order}, due" in noted.locator("h2").inner_text()
        noted.get_by_role("button", name="Add the tablet's as a note").click()
        manager.locator(".flash", has_text=f"added to {noted_patient}'s notes").wait_for()
        assert cards.count() == 0
        manager.get_by_text("Nothing to review.").wait_for()
        assert server.query(record, noted_task) == priyas
        assert server.query(reviewed, tablet_id) == [(1, 1), (2, 1)]
        [(text, by)] = server.query(
            "SELECT n.text, n.user_id FROM notes n JOIN patients p ON p.id = n.patient_id "
            "WHERE p.name = ? ORDER BY n.id DESC LIMIT 1", noted_patient)
        assert text.startswith("From Yellow #14 (a sync conflict, reviewed): ")
        assert "by Leo Assistant" in text and "Note: restless" in text
        assert "kept by Priya Tech" in text and "Note: calm" in text
        assert by == people["Dana Manager"]
        assert server.query("SELECT count(*) FROM notes")[0][0] == notes_before + 1
        assert server.query("SELECT action FROM audit_entries ORDER BY id DESC LIMIT 1") == \
            [("sync.dismiss",)]
    finally:
        desk.close()


def test_a_manager_overrides_a_blocked_discharge_from_a_tablet(browser, server):
    """The manager's reason for discharging past a blocker travels with the tablet's op (it
    was dropped, and the discharge refused)."""
    patient_id, uid, name = quiet_patient(server, skip=4)
    context, page, device_id = paired_tablet(browser, server, number=11, colour="red")
    try:
        unlock(page, "Dana Manager", "666666")
        page.goto(f"{server.base_url}/patients/{uid}/anaesthesia")
        page.locator("html[data-binder=on]").wait_for(state="attached")
        start_sheet(page, "Dental")  # left open: it holds the discharge
        outbox_empty(page)
        assert server.query("SELECT status FROM anaesthesia_sheets WHERE patient_id = ?",
                            patient_id) == [("open",)]
        page.goto(f"{server.base_url}/patients/{uid}/discharge")
        page.locator("h1", has_text=f"Discharge {name}").wait_for()
        page.locator("html[data-binder=on]").wait_for(state="attached")
        page.locator("textarea[name=override_reason]").fill(
            "Owner collects now; sheet closed on paper")
        page.get_by_role("button", name=f"Discharge {name}").click()
        outbox_empty(page)
        page.locator("#discharge", has_text="Discharged").wait_for(timeout=SYNC_TIMEOUT_MS)
        reason = "Owner collects now; sheet closed on paper"
        assert server.query("SELECT status, discharge_override FROM patients WHERE id = ?",
                            patient_id) == [("discharged", reason)]
        assert server.query("SELECT name, status FROM sync_ops WHERE device_id = ? ORDER BY seq",
                            int(device_id[2:]))[-1] == ("patient.discharge", "applied")
    finally:
        context.close()
