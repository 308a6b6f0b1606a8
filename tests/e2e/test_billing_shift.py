"""A shift with an outage, as a clinic lives it: end of shift marked, the server dies, two
tablets keep completing billable tasks offline (one task done on both), the shift is closed
on a tablet while still offline, the server comes back and the tablets sync. Each billable
action is charged exactly once, in the shift it was performed in although it arrived after
its end; the offline ones are flagged on the billing PDF, and the practice system's webhook
holds exactly those charges."""

import io
import time

import pytest
from pypdf import PdfReader

from tests.support.server import KioskServer, serving
from tests.support.webhook_peer import WebhookPeer

from .conftest import attention_list, wait_outbox
from .helpers import (
    complete_in_dialog,
    hourly_tasks,
    set_up,
    set_up_tablet,
    wait_cached,
    wait_for,
)

pytestmark = pytest.mark.e2e
OFFLINE_AFTER_S = 5  # the clinic's is 60 s; a test waits less


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own (the test stops and restarts it), counting an action that reached
    it more than 5 s late as captured offline."""
    yield from serving(KioskServer(tmp_path_factory.mktemp("kiosk-billing"), env={
        "KIOSK_BILLING_OFFLINE_AFTER_S": str(OFFLINE_AFTER_S)}))


def billable_tasks(server) -> tuple[str, str, list[str]]:
    """An admitted, linked patient with three open billable tasks today: uid, name, tasks."""
    rows = server.query(
        "SELECT p.uid, p.name FROM patients p WHERE p.status = 'admitted' "
        "AND NOT p.unallocated ORDER BY p.id LIMIT 1")
    assert rows, "the demo clinic has no admitted, linked patient"
    uid, name = rows[0]
    return uid, name, hourly_tasks(server, uid, 3)


def sent_count(server) -> int:
    return server.query("SELECT count(*) FROM charges WHERE sent_at IS NOT NULL")[0][0]


def test_a_shift_through_an_outage_charges_each_billable_action_once(browser, server):
    manager = server.signed_in("manager", "manager-demo")
    base = server.base_url
    with WebhookPeer() as peer:
        answer = manager.post(f"{base}/billing/admin/", data={"kind": "webhook",
                                                              "webhook_url": peer.url})
        assert answer.status_code == 200 and "Connector saved." in answer.text
        # The demo clinic's earlier charges go first; what the peer holds then is the baseline.
        sendable = server.query("SELECT count(*) FROM charges c JOIN patients p ON "
                                "p.id = c.patient_id WHERE NOT p.unallocated")[0][0]
        wait_for(lambda: sent_count(server) == sendable, "the demo's charges to be sent")
        before = set(peer.accepted)
        charges_before = server.query("SELECT count(*) FROM charges")[0][0]
        assert manager.post(f"{base}/billing/shift-end", data={"note": "before the outage"}
                            ).status_code == 200

        uid, name, (t1, t2, t3) = billable_tasks(server)
        sheet = f"/patients/{uid}/sheet"
        blue_context, blue, _ = set_up_tablet(browser, server)
        green_context, green, _ = set_up(browser, server, number=3, colour="green",
                                         username="tech", password="tech-demo-1")
        try:
            for page in (blue, green):
                page.goto(base + sheet)
                wait_cached(page, sheet)
                wait_cached(page, "/static/js/sheet.js")
                wait_cached(page, "/patients/")
            outage(server, (blue_context, blue, (t1, t2)), (green_context, green, (t2, t3)),
                   name)
        finally:
            if server.process is None or server.process.poll() is not None:
                server.start()
            blue_context.close()
            green_context.close()

        # Each billable action once: three tasks, four completions, three charges.
        keys = [f"task:{t}" for t in (t1, t2, t3)]
        rows = server.query(
            "SELECT key, uid, offline, performed_at < recorded_at FROM charges "
            "WHERE key IN (?, ?, ?) ORDER BY key", *keys)
        assert sorted(r[0] for r in rows) == sorted(keys)
        assert all(offline == 1 for _, _, offline, _ in rows), rows
        assert server.query("SELECT count(*) FROM charges")[0][0] == charges_before + 3
        assert server.query("SELECT count(*) FROM task_completions c JOIN tasks t ON "
                            "t.id = c.task_id WHERE t.uid = ?", t2) == [(2,)]
        new_uids = {r[1] for r in rows}

        # The practice system holds exactly those charges, each once in effect.
        wait_for(lambda: set(peer.accepted) - before == new_uids, "the peer to hold the "
                 f"shift's charges (it has {len(set(peer.accepted) - before)} new)")
        assert set(peer.accepted) - before == new_uids

        # The shift was closed on the blue tablet, offline, after the tasks were done.
        mark, by_device = server.query(
            "SELECT uid, device_id FROM shift_marks ORDER BY at DESC LIMIT 1")[0]
        assert by_device is not None
        assert server.query("SELECT count(*) FROM charges c JOIN shift_marks m ON m.uid = ? "
                            "WHERE c.key IN (?, ?, ?) AND c.performed_at < m.at "
                            "AND c.recorded_at > m.at", mark, *keys) == [(3,)]
        pdf = manager.get(f"{base}/billing/report.pdf", params={"shift": mark,
                                                                "patient": uid})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)
                                                                   ).pages)
        assert name in text
        assert "3 captured OFFLINE" in text, text[:2000]
        assert "3 arrived after the shift's end" in text
        assert text.count("OFFLINE") >= 3 + 1  # each line, and the summary


def outage(server, *tablets_and_tasks_and_name) -> None:
    """The network and the server go; each tablet completes its tasks offline; the server
    restarts; the tablets sync everything."""
    *tablets, name = tablets_and_tasks_and_name
    for context, _, _ in tablets:
        context.set_offline(True)
    server.stop()
    for _, page, tasks in tablets:
        page.reload()  # from the service worker's copy
        page.locator("h1", has_text=name).wait_for()
        for task in tasks:
            complete_in_dialog(page, page.locator(f'a.task[data-task="{task}"]'))
            page.locator(f'a.task.done.waiting[data-task="{task}"]').wait_for()
    # The outage lasts longer than "offline" means; then the shift ends, still during it,
    # marked on the first tablet from its kept list. (Seconds after the tasks: the server
    # corrects each tablet's times by its own measured skew, good to a request's latency.)
    time.sleep(OFFLINE_AFTER_S + 1)
    _, first, _ = tablets[0]
    first.goto(server.base_url + "/patients/")
    first.once("dialog", lambda dialog: dialog.accept())  # "Mark the end of the shift now?"
    first.get_by_role("button", name="Mark end of shift").click()
    first.locator("#shift-end-waiting").wait_for()
    server.start()
    for context, page, _ in tablets:
        context.set_offline(False)
        wait_outbox(page, timeout=30_000)
    for _, page, _ in tablets:
        attention = attention_list(page)
        # The second tablet's completion of the shared task is recorded as a conflict.
        assert all("conflict" in str(item).lower() for item in attention), attention
