"""Smart flows in a real browser, end to end: a manager builds "admitted dog of 7 years or
more → bloods task for the responsible vet, due 2 hours after admission, weekend → Monday,
reminder 1 hour ahead, cancelled at discharge" with the builder's own form, dry-runs it,
turns it on, admits such a dog, and the task shows on the ward's board (live) and in the
vet's inbox. Then the same with the job queue on Redis and a separate `kiosk worker`.

The demo server runs on the wall clock: due times are compared with what the dry run said
(a due on a weekend moves to the Monday), never with a fixed clock time."""

import json
import re
import secrets
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.core import clock
from tests.support.queues import REDIS_URL, redis_queue_settings
from tests.support.server import KioskServer, kiosk_executable, serving

from .conftest import LIVE_CONNECTED, LIVE_JOINED, TABLET, WALL, sign_in

pytestmark = pytest.mark.e2e

MANAGER = ("manager", "manager-demo")
VET = ("vet", "vet-demo-1")
VET_NAME = "Dr Sam Okafor"
WARD = "ICU"
FLOW_NAME = "Bloods for older dogs"
TASK_ITEM = "Bloods for {{ patient.name }}"
# What the builder's form must store, every field as the manager set it.
DEFINITION = {
    "trigger": {"kind": "patient_admitted"},
    "conditions": [{"field": "species", "op": "eq", "value": "canine"},
                   {"field": "age_years", "op": "ge", "value": "7"}],
    "steps": [{"category": "task", "type": "staff_task", "item": TASK_ITEM,
               "responsible": "doctor",
               "due": {"amount": 2, "unit": "hours", "after": "admitted", "weekend": "monday"},
               "remind": {"amount": 1, "unit": "hours"}, "completes_flow": False,
               "cancel_on_discharge": True}],
}
# Playwright polls functions, never expressions (the pages' policy refuses eval).
CONNECTED = LIVE_CONNECTED
JOINED = LIVE_JOINED
# The form is replaced, and htmx has settled it: its selects answer a change again (htmx
# wires new content while it settles, a moment after the swap; a busy machine stretches it).
MARK_STALE = ("() => { document.getElementById('flow-form').dataset.stale = '1';"
              " window.flowFormSettled = false;"
              " if (!window.flowFormWatch) { window.flowFormWatch = true;"
              " document.body.addEventListener('htmx:afterSettle', () => {"
              " const f = document.getElementById('flow-form');"
              " if (f !== null && f.dataset.stale === undefined) { window.flowFormSettled = true; }"
              " }); } }")
FORM_REPLACED = ("() => { const f = document.getElementById('flow-form');"
                 " return f !== null && f.dataset.stale === undefined"
                 " && window.flowFormSettled === true; }")


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory):
    """A server of its own: the flow these tests turn on must not touch the others' clinic."""
    yield from serving(KioskServer(tmp_path_factory.mktemp("kiosk-flows")))


# ---- Redis and a separate worker ------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_queue():
    """Settings for a job queue and live channel on Redis of this module alone (its keys
    deleted afterwards); skipped when Redis is unreachable, failed instead on CI."""
    with redis_queue_settings("kiosk_jobs_e2e_flows") as settings:
        yield settings


def queued_jobs(redis_queue) -> str:
    """The jobs waiting on the module's Redis queue, as their JSON messages."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return "\n".join(message.decode() for message in client.lrange(
            f"huey.redis.{redis_queue['KIOSK_JOBS_NAME']}", 0, -1))
    finally:
        client.close()


class Worker:
    """`kiosk worker` on a server's database and queue, started when the test says."""

    def __init__(self, server):
        self.server = server
        self.log_path = server.directory / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [kiosk_executable(), "worker"], env=self.server.process_env(),
            cwd=self.server.directory, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def redis_server(browser_ready, redis_queue, tmp_path_factory):
    """A server whose jobs go to Redis and which runs none itself (KIOSK_WORKER=separate),
    and a `kiosk worker` for the same database and queue (not started): (server, worker)."""
    server = KioskServer(tmp_path_factory.mktemp("kiosk-flows-redis"),
                         env={**redis_queue, "KIOSK_WORKER": "separate"})
    for running in serving(server):
        worker = Worker(running)
        try:
            yield running, worker
        finally:
            worker.stop()


# ---- The builder ----------------------------------------------------------------------------

def live_select(page, name: str, **option) -> None:
    """Choose in one of the builder's selects that redraw the form (htmx, on change) and
    wait for the new form: a field filled meanwhile would be drawn over."""
    page.evaluate(MARK_STALE)
    page.locator(f"#flow-form select[name='{name}']").select_option(**option)
    page.wait_for_function(FORM_REPLACED)


def press(page, button: str, then: str) -> None:
    """Press one of the form's row buttons (a plain post of the whole form) and wait for the
    page it draws, loaded, to show `then`."""
    with page.expect_navigation():  # loaded: htmx is listening again
        page.locator("#flow-form").get_by_role("button", name=button, exact=True).click()
    page.locator(then).wait_for()


def flow_build(page, base: str) -> str:
    """Build the flow through /flows/new as a manager would, and save it (off); its uid."""
    page.goto(f"{base}/flows/new")
    page.locator("h1", has_text="New flow").wait_for()
    page.locator("#flow-form input[name=name]").fill(FLOW_NAME)
    live_select(page, "trigger-kind", label="A patient is admitted")

    press(page, "Add condition", "select[name='conditions-0-field']")
    live_select(page, "conditions-0-field", label="Species")
    page.locator("select[name='conditions-0-op']").select_option(label="is")
    page.locator("input[name='conditions-0-value']").fill("canine")
    press(page, "Add condition", "select[name='conditions-1-field']")
    live_select(page, "conditions-1-field", label="Age (years)")
    page.locator("select[name='conditions-1-op']").select_option(label="is at least")
    page.locator("input[name='conditions-1-value']").fill("7")
    assert page.locator("input[name='conditions-0-value']").input_value() == "canine"

    # One step: the form starts with one; a second added and taken away with its buttons.
    press(page, "Add step", "#step-1")
    with page.expect_navigation():
        page.locator("#step-1").get_by_role("button", name="Remove step").click()
    page.locator("#step-0").wait_for()
    assert page.locator("fieldset.flow-step").count() == 1
    step = page.locator("#step-0")
    live_select(page, "steps-0-category", label="Task for staff")
    live_select(page, "steps-0-type", label="Create a staff task")
    step.locator("input[name='steps-0-item']").fill(TASK_ITEM)
    step.locator("select[name='steps-0-responsible']").select_option(
        label="The patient's doctor")
    step.locator("input[name='steps-0-due-amount']").fill("2")
    step.locator("select[name='steps-0-due-unit']").select_option(label="hours")
    step.locator("select[name='steps-0-due-after']").select_option(label="admission")
    step.locator("select[name='steps-0-due-weekend']").select_option(
        label="Move it to the Monday after")
    step.locator("input[name='steps-0-remind-amount']").fill("1")
    step.locator("select[name='steps-0-remind-unit']").select_option(label="hours")
    step.locator("input[name='steps-0-cancel_on_discharge']").check()
    assert not step.locator("input[name='steps-0-completes_flow']").is_checked()
    assert not page.locator("#flow-form input[name=enabled]").is_checked()

    page.locator("#flow-form").get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"/flows/?$"))
    page.get_by_text(f"“{FLOW_NAME}” saved (version 1).").wait_for()
    row = page.locator("tr", has_text=FLOW_NAME)
    row.locator(".tag", has_text="Off").wait_for()
    return row.get_attribute("id").removeprefix("flow-")


def stored_definition(server, flow_uid: str) -> dict:
    """The flow's current version as stored."""
    [(text,)] = server.query(
        "SELECT v.definition FROM flow_versions v JOIN flows f ON f.id = v.flow_id "
        "WHERE f.uid = ? ORDER BY v.number DESC LIMIT 1", flow_uid)
    return json.loads(text)


def dry_run(page, base: str, flow_uid: str, patient_label: str, at: str | None = None
            ) -> dict:
    """Open the flow's dry run from the list, choose a patient (and the moment, if given)
    and show the plan: what its one step's row says, and the moment it was run for."""
    page.goto(f"{base}/flows/")
    page.locator(f"#flow-{flow_uid}").get_by_role("link", name="Dry run").click()
    page.locator("h1", has_text=f"Dry run: {FLOW_NAME}").wait_for()
    page.locator("select[name=patient]").select_option(label=patient_label)
    if at is not None:
        page.locator("input[name=at]").fill(at)
    page.get_by_role("button", name="Show what it would do").click()
    plan = page.locator("section.flow-plan")
    plan.wait_for()
    assert plan.locator("h2").inner_text() == "The flow would start"
    plan.get_by_text("Nothing was done.").wait_for()
    assert plan.locator(".flow-checks li.flow-not").count() == 0
    assert plan.locator(".flow-checks li.flow-ok").count() == 2
    cells = plan.locator("tbody tr").first.locator("td").all_inner_texts()
    number, label, _runs, due, remind, who, text = (c.strip() for c in cells)
    assert (number, label) == ("1", "Create a staff task")
    return {"due": due, "remind": remind, "who": who, "text": text,
            "at": page.locator("input[name=at]").input_value()}


def flow_enable(page, base: str, flow_uid: str) -> None:
    """Turn the flow on from the list."""
    page.goto(f"{base}/flows/")
    row = page.locator(f"#flow-{flow_uid}")
    row.get_by_role("button", name="Turn on").click()
    page.get_by_text(f"“{FLOW_NAME}” is on").wait_for()
    page.locator(f"#flow-{flow_uid} .tag.flow-on", has_text="On").wait_for()


def demo_flow_off(page, base: str, name: str = "Senior bloods") -> None:
    """Turn off the demo's own flow of the same kind from the list (a manager replacing it;
    left on, it would make a second bloods task for the same dog)."""
    page.goto(f"{base}/flows/")
    row = page.locator("tr", has=page.get_by_role("cell", name=name, exact=True))
    row.get_by_role("button", name="Turn off").click()
    page.get_by_text(f"“{name}” is off").wait_for()


def runs_and_tasks(server) -> list[tuple]:
    """How many flow runs and staff tasks are stored."""
    return server.query("SELECT (SELECT count(*) FROM flow_runs), "
                        "(SELECT count(*) FROM staff_tasks)")


# ---- The clinic -----------------------------------------------------------------------------

def old_demo_dog(server) -> tuple[str, str]:
    """An admitted demo dog of 7 years or more: its name and its line in the dry run's list."""
    limit = (clock.utcnow().date() - timedelta(days=7 * 366)).isoformat()
    rows = server.query(
        "SELECT p.name, p.species, w.name, p.cage FROM patients p JOIN wards w ON "
        "w.id = p.ward_id WHERE p.status = 'admitted' AND p.species = 'canine' AND "
        "p.date_of_birth <= ? ORDER BY p.id", limit)
    assert rows, "the demo clinic has no admitted dog of 7 years or more"
    name, species, ward, cage = rows[0]
    return name, f"{name} ({species}, {ward}, cage {cage})"


def admit_dog(page, base: str, name: str) -> str:
    """Admit a dog of eight whose doctor is the demo vet, through the patients page's form
    (the demo clinic allows direct creation), in a cage that sorts first on the ward's
    board; its uid."""
    born = clock.utcnow().date().replace(day=1) - timedelta(days=8 * 366)
    page.goto(f"{base}/patients/")
    page.get_by_role("link", name="+ New patient").click()
    page.locator("h1", has_text="New patient").wait_for()
    form = page.locator("form.form-grid")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=species]").fill("canine")
    form.locator("input[name=breed]").fill("Labrador Retriever")
    form.locator("input[name=date_of_birth]").fill(born.isoformat())
    form.locator("select[name=ward]").select_option(label=WARD)
    form.locator("input[name=cage]").fill("A1")
    form.locator("input[name=doctor]").fill(VET_NAME)
    form.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/patients/[^/]+/sheet$"))
    return page.url.rsplit("/", 2)[-2]


def admitted_local(server, uid: str) -> str:
    """When the patient was admitted, as the dry run's datetime-local field takes it."""
    from zoneinfo import ZoneInfo

    [(text,)] = server.query("SELECT admitted_at FROM patients WHERE uid = ?", uid)
    at = datetime.fromisoformat(str(text).replace(" ", "T")).replace(tzinfo=ZoneInfo("UTC"))
    return clock.to_local(at, ZoneInfo(server.env["KIOSK_TIMEZONE"])).strftime("%Y-%m-%dT%H:%M")


def open_board(page, base: str, server) -> None:
    """Open the ward's board and wait until it is live (in its room)."""
    [(board_id,)] = server.query("SELECT id FROM boards WHERE name = ?", f"{WARD} board")
    page.goto(f"{base}/boards/{board_id}")
    page.locator("#board-grid .board-row").first.wait_for()
    page.wait_for_function(CONNECTED)
    answer = page.evaluate(JOINED)
    assert answer["joined"] == [f"board:{board_id}"], answer
    page.evaluate("() => { window.notReloaded = true; }")  # gone if the page reloads


def board_chip(board, uid: str, title: str):
    """The patient's task chip on the open board, once the board has drawn it (live)."""
    chip = board.locator(f"#row-{uid} .badge.staff-task", has_text="Bloods")
    chip.wait_for(state="attached", timeout=30_000)
    assert board.evaluate("() => window.notReloaded === true"), "the board page was reloaded"
    assert chip.get_attribute("title").startswith(f"{title}, due "), chip.get_attribute("title")
    return chip


def inbox_task(page, base: str, title: str):
    """The task's row in the signed-in person's inbox (opened once the task exists)."""
    page.goto(f"{base}/inbox/")
    row = page.locator("li.inbox-task", has_text=title)
    row.wait_for()
    return row


def task_stored(server, title: str) -> list[tuple]:
    """The staff tasks called `title`: their assignee's username, and how long before it
    is due its reminder comes (seconds)."""
    return server.query(
        "SELECT t.title, u.username, CAST(round((julianday(t.due_at) - "
        "julianday(t.remind_at)) * 86400) AS INTEGER) FROM staff_tasks t "
        "LEFT JOIN users u ON u.id = t.assignee_id WHERE t.title = ? ORDER BY t.id", title)


def context_signed_in(browser, base: str, who: tuple[str, str], viewport=TABLET):
    """A browser context and page signed in with a password."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, *who)
    return context, page


# ---- The tests ------------------------------------------------------------------------------

def test_a_manager_builds_dry_runs_and_enables_a_flow_and_the_task_reaches_board_and_inbox(
        browser, server):
    base = server.base_url
    manager_context, manager = context_signed_in(browser, base, MANAGER, WALL)
    vet_context, vet = context_signed_in(browser, base, VET)
    try:
        demo_flow_off(manager, base)
        flow_uid = flow_build(manager, base)
        assert stored_definition(server, flow_uid) == DEFINITION

        # The dry run, for a demo dog: the due time and words, and nothing done.
        dog, dog_label = old_demo_dog(server)
        before = runs_and_tasks(server)
        planned = dry_run(manager, base, flow_uid, dog_label)
        assert planned["text"] == f"Bloods for {dog}"
        assert VET_NAME in planned["who"]
        expected_due, expected_remind = due_and_remind(server, planned["at"])
        assert (planned["due"], planned["remind"]) == (expected_due, expected_remind)
        assert runs_and_tasks(server) == before

        flow_enable(manager, base, flow_uid)

        # The ward's board is up, live, before the dog arrives.
        board_page = manager_context.new_page()
        open_board(board_page, base, server)
        name = f"Brutus {secrets.token_hex(2)}"
        admitting = manager_context.new_page()
        uid = admit_dog(admitting, base, name)
        title = f"Bloods for {name}"
        chip = board_chip(board_page, uid, title)

        # The plan for this dog at its admission is what was done.
        planned = dry_run(manager, base, flow_uid, f"{name} (canine, {WARD}, cage A1)",
                          at=admitted_local(server, uid))
        assert planned["text"] == title
        due_time = planned["due"][-5:]
        assert chip.get_attribute("title") == f"{title}, due {due_time}"
        assert chip.inner_text().strip().endswith(due_time)

        row = inbox_task(vet, base, title)
        assert row.locator(".inbox-due").inner_text().strip() == f"Due {planned['due']}"
        row.get_by_text("For you").wait_for()
        row.get_by_role("button", name="Mark done").wait_for()
        assert task_stored(server, title) == [(title, "vet", 60 * 60)]
    finally:
        manager_context.close()
        vet_context.close()


def test_with_a_separate_worker_on_redis_the_task_still_reaches_board_and_inbox(
        browser, redis_server, redis_queue):
    server, worker = redis_server
    base = server.base_url
    manager_context, manager = context_signed_in(browser, base, MANAGER, WALL)
    vet_context, vet = context_signed_in(browser, base, VET)
    try:
        demo_flow_off(manager, base)
        flow_uid = flow_build(manager, base)
        flow_enable(manager, base, flow_uid)

        board_page = manager_context.new_page()
        open_board(board_page, base, server)
        name = f"Brutus {secrets.token_hex(2)}"
        uid = admit_dog(manager_context.new_page(), base, name)
        # The admission was noted and its evaluation waits on Redis: the server runs no job.
        assert server.query("SELECT count(*) FROM flow_events e JOIN patients p ON "
                            "p.id = e.patient_id WHERE p.uid = ?", uid) == [(1,)]
        assert "flows.evaluate" in queued_jobs(redis_queue)
        assert server.query("SELECT count(*) FROM flow_runs r JOIN flows f ON f.id = r.flow_id "
                            "WHERE f.name = ?", FLOW_NAME) == [(0,)]

        worker.start()  # the separate worker takes it from Redis
        title = f"Bloods for {name}"
        chip = board_chip(board_page, uid, title)
        row = inbox_task(vet, base, title)
        assert worker.process.poll() is None, worker.log_text()
        assert "worker of queue" in worker.log_text()

        planned = dry_run(manager, base, flow_uid, f"{name} (canine, {WARD}, cage A1)",
                          at=admitted_local(server, uid))
        assert row.locator(".inbox-due").inner_text().strip() == f"Due {planned['due']}"
        assert chip.get_attribute("title") == f"{title}, due {planned['due'][-5:]}"
        assert task_stored(server, title) == [(title, "vet", 60 * 60)]
    finally:
        manager_context.close()
        vet_context.close()


def due_and_remind(server, at_local: str) -> tuple[str, str]:
    """The due and reminder times, as the pages show them, of the flow's task for an event
    at `at_local` (the dry run's moment): 2 hours on, a weekend moved to the Monday, the
    reminder an hour before."""
    from zoneinfo import ZoneInfo

    from kiosk.flows.due import due_compute, remind_compute

    tz = ZoneInfo(server.env["KIOSK_TIMEZONE"])
    anchor = datetime.fromisoformat(at_local).replace(tzinfo=tz).astimezone(UTC)
    due = due_compute(anchor=anchor, amount=2, unit="hours", weekend="monday", tz=tz)
    remind = remind_compute(due=due, amount=1, unit="hours", tz=tz)
    shown = "%a %d %b %H:%M"
    return clock.to_local(due, tz).strftime(shown), clock.to_local(remind, tz).strftime(shown)
