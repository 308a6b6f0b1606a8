"""Exactly once, whatever the network does (SYNC.md), checked with generated op streams.

One to three tablets act on the same patients and tasks. Their ops go through a faithful
model of the tablet's outbox and an adversarial transport (random batch sizes, duplicated
requests, replays of old requests, lost answers, lost requests, late requests, batches
sent out of order, a seq counter that jumps) to POST /api/sync. Once every outbox is
empty, the server's state must equal the same ops applied once each, in the order the
server recorded them, through the services directly in a fresh database.
"""


import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from sqlalchemy import select

from kiosk.core.clock import hour_floor, zone
from kiosk.core.errors import DomainError
from kiosk.devices.models import Device
from kiosk.extensions import db
from kiosk.patients.selectors import patient_by_uid
from kiosk.patients.services import patient_create
from kiosk.staff.models import User
from kiosk.sync.ops import CONFLICT_CODES
from kiosk.treatments.selectors import task_by_uid
from kiosk.treatments.services import (
    note_add,
    order_create,
    task_complete,
    task_skip,
)

from .helpers import (
    FIRST_STATUSES,
    SETTINGS,
    Outbox,
    World,
    db_reset,
    device_last_seq,
    domain_snapshot,
    intents,
    now_utc,
    op_make,
    stable_uid,
    sync_post,
    sync_records,
    world_make,
)

# ---- The transport ----------------------------------------------------------------------

FATES = ("ok", "ok", "ok", "lost_answer", "lost_request", "duplicated", "late")


def steps(devices: int):
    """What happens, step by step: tablets work and send; the network misbehaves."""
    device = st.integers(0, devices - 1)
    work = st.tuples(st.just("work"), device, st.integers(1, 4),
                     st.sampled_from([0, 0, 0, 0, 0, 1, 2]))
    send = st.tuples(st.just("send"), device, st.integers(1, 6), st.sampled_from(FATES))
    return st.lists(st.one_of(
        work, send, work, send, send,
        st.tuples(st.just("out_of_order"), device, st.integers(1, 3), st.integers(1, 4)),
        st.tuples(st.just("replay"), st.integers(0, 1000)),
        st.tuples(st.just("late_arrive")),
    ), min_size=15, max_size=60)


@st.composite
def scenarios(draw):
    """How many tablets, what each does, and what the network does to it."""
    devices = draw(st.integers(1, 3))
    plans = [draw(st.lists(intents, min_size=1, max_size=12)) for _ in range(devices)]
    return devices, plans, draw(steps(devices))


class Network:
    """Delivers requests to the server; remembers them to replay later."""

    def __init__(self, client):
        self.client = client
        self.sent: list[tuple[str, dict]] = []  # every request that reached the wire
        self.late: list[tuple[str, dict]] = []
        self.statuses: list[int] = []
        self.duplicates = 0

    def deliver(self, token: str, body: dict):
        """One request reaching the server: (status, answer)."""
        status, answer = sync_post(self.client, token, body)
        self.statuses.append(status)
        assert status in (200, 409), (status, answer)
        assert isinstance(answer, dict) and isinstance(answer.get("last_seq"), int), answer
        self.duplicates += sum(r["status"] == "duplicate" for r in answer.get("results", []))
        return status, answer

    def send(self, outbox: Outbox, ops: list[dict], fate: str) -> None:
        """A tablet's request with a fate; the tablet acts only on answers it receives."""
        body = outbox.body(ops)
        if fate == "lost_request":
            return
        if fate == "late":  # stuck in the network; the tablet gave up waiting
            self.late.append((outbox.token, body))
            return
        self.sent.append((outbox.token, body))
        status, answer = self.deliver(outbox.token, body)
        if fate == "duplicated":
            status, answer = self.deliver(outbox.token, body)
        if fate != "lost_answer":
            outbox.settle(status, answer)

    def replay(self, pick: int) -> None:
        """An old request delivered again (its answer goes nowhere)."""
        if self.sent:
            self.deliver(*self.sent[pick % len(self.sent)])

    def late_arrive(self) -> None:
        """Requests stuck in the network finally arrive (nobody waits for the answers)."""
        for token, body in self.late:
            self.sent.append((token, body))
            self.deliver(token, body)
        self.late.clear()


def run_scenario(client, world: World, plans, schedule):
    """Play the schedule, then let every tablet flush until its outbox is empty."""
    outboxes = [Outbox(device=d, token=t) for d, _, t in world.devices]
    ops = {d: [op_make(world, d, i, intent) for i, intent in enumerate(plan)]
           for d, plan in enumerate(plans)}
    recorded = dict.fromkeys(ops, 0)
    network = Network(client)

    def work(d: int, count: int, skip: int = 0) -> None:
        for _ in range(count):
            if recorded[d] < len(ops[d]):
                outboxes[d].record(ops[d][recorded[d]], skip=skip)
                recorded[d] += 1
                skip = 0

    for step in schedule:
        kind = step[0]
        if kind == "work":
            work(step[1], step[2], step[3])
        elif kind == "send" and outboxes[step[1]].pending:
            box = outboxes[step[1]]
            network.send(box, box.batch(step[2]), step[3])
        elif kind == "out_of_order" and len(outboxes[step[1]].pending) > step[2]:
            box = outboxes[step[1]]  # a later request overtook an earlier one
            network.send(box, box.batch(step[3], start=step[2]), "ok")
        elif kind == "replay":
            network.replay(step[1])
        elif kind == "late_arrive":
            network.late_arrive()
    for d in ops:
        work(d, len(ops[d]))
    for box in outboxes:
        for _ in range(100):
            if not box.pending:
                break
            network.send(box, box.batch(7), "ok")
        assert not box.pending, f"{box.device} could not empty its outbox: {box.pending}"
    return outboxes, {op["id"]: op for plan in ops.values() for op in plan}, network


# ---- The reference: each op once, through the services ----------------------------------

def reference_apply(op: dict, device: Device, now) -> tuple[str, str | None]:
    """Apply one op through the service it names: (status, code)."""
    from datetime import datetime

    user = db.session.get(User, int(op["user"][2:]))
    at = datetime.fromisoformat(op["at"].replace("Z", "+00:00"))
    args = op["args"]
    try:
        with db.session.begin_nested():
            if op["name"] == "note.add":
                note_add(patient=patient_by_uid(args["patient"]), user=user, text=args["text"],
                         uid=args["note"], device=device, at=at)
            elif op["name"] == "task.complete":
                done = task_complete(task=task_by_uid(args["task"]), user=user, device=device,
                                     at=at, value=args.get("value"), now=now)
                if done.conflict:
                    return "conflict", done.conflict
            elif op["name"] == "task.skip":
                task_skip(task=task_by_uid(args["task"]), user=user, reason=args["reason"],
                          device=device, at=at)
            elif op["name"] == "order.create":
                data = {k: args[k] for k in ("name", "kind", "every_hours", "start", "end")}
                order_create(user=user, patient=patient_by_uid(args["patient"]), data=data,
                             uid=args["order"], device=device, now=now)
            elif op["name"] == "patient.create":
                patient_create(user=user, data={"name": args["name"],
                                                "species": args["species"]},
                               uid=args["patient"], device=device, at=at, clinical_fact=True)
            else:
                return "rejected", "unknown_op"
    except DomainError as exc:
        return ("conflict" if exc.code in CONFLICT_CODES else "rejected"), exc.code
    return "applied", None


def network_409s(records) -> int:
    """How many sequence gaps the devices' histories show."""
    from kiosk.devices.models import DeviceEvent

    return db.session.scalar(select(db.func.count()).select_from(DeviceEvent)
                             .where(DeviceEvent.kind == "gap"))


def record_code(record) -> str | None:
    """The conflict or error code of a stored op record."""
    result = record.result or {}
    return result.get("conflict") or (result.get("error") or {}).get("code")


# ---- The property -----------------------------------------------------------------------

@SETTINGS
@given(scenario=scenarios())
# Found by this test: a request replayed after the tablet renumbered swallows a later op.
@example(scenario=(1, [[("bogus", 1), ("complete", 0, 1, False)]],
                   [("work", 0, 1, 1), ("send", 0, 1, "ok"), ("send", 0, 1, "ok"),
                    ("replay", 0), ("work", 0, 1, 0)]))
def test_every_op_is_applied_exactly_once_whatever_the_transport(app, client, scenario):
    """Duplicated, replayed, lost, late or reordered requests never apply an op twice or lose it."""
    devices, plans, schedule = scenario
    base = hour_floor(now_utc(), zone("UTC"))
    db_reset()
    world = world_make(base, devices)
    outboxes, ops, network = run_scenario(client, world, plans, schedule)

    records = sync_records()
    event(f"sequence gaps: {min(network_409s(records), 3)}{'+' * (network_409s(records) >= 3)}")
    event(f"renumbered tablets: {sum(1 for b in outboxes if b.renumbered)}")
    duplicates = network.duplicates
    event(f"duplicate answers: {'none' if not duplicates else '1-9' if duplicates < 10 else '10+'}")
    event(f"requests: {'<10' if len(network.statuses) < 10 else '10+'}")
    firsts = [r for r in records if r.status in FIRST_STATUSES]
    # Every op id has exactly one record that processed it; all others are duplicates.
    assert sorted(r.op_id for r in firsts) == sorted(ops), "an op was lost or processed twice"
    assert all(r.original_id is None for r in firsts)
    assert {r.op_id for r in records if r.status == "duplicate"} <= set(ops)
    # Each tablet's ops were processed in the order they happened on it.
    for d, plan in enumerate(plans):
        mine = [r.op_id for r in firsts if r.device_id == world.devices[d][1]]
        assert mine == [stable_uid("op", d, i) for i in range(len(plan))]
    # The server's last_seq is where the tablet's numbering ended.
    for box, (_, row_id, _) in zip(outboxes, world.devices, strict=True):
        assert device_last_seq(row_id) == box.next_seq - 1
        if not box.renumbered:
            assert box.next_seq - 1 == sum(1 for r in firsts if r.device_id == row_id)

    server_state = domain_snapshot()
    server_outcomes = {r.op_id: (r.status, record_code(r)) for r in firsts}
    order = [(r.op_id, r.device_id) for r in firsts]
    completes = sum(1 for op_id, (status, _) in server_outcomes.items()
                    if ops[op_id]["name"] == "task.complete" and status != "rejected")
    notes = sum(1 for op_id, (status, _) in server_outcomes.items()
                if ops[op_id]["name"] == "note.add" and status == "applied")
    assert sum(count for _, count in server_state["completions"]) == completes
    assert len(server_state["notes"]) == notes
    firsts_per_task = {}
    for (task, *_rest, duplicate, _conflict), count in server_state["completions"]:
        if not duplicate:
            firsts_per_task[task] = firsts_per_task.get(task, 0) + count
    assert all(n == 1 for n in firsts_per_task.values()), firsts_per_task
    done = {t[0] for t in server_state["tasks"] if t[1] == "done"}
    assert done == set(firsts_per_task)

    # The reference: the same ops once each, in the order the server processed them.
    db_reset()
    world_make(base, devices)
    now = now_utc()
    outcomes = {}
    for op_id, device_id in order:
        outcomes[op_id] = reference_apply(ops[op_id], db.session.get(Device, device_id), now)
    db.session.commit()
    assert server_outcomes == outcomes
    assert server_state == domain_snapshot()


def test_a_stale_request_replayed_after_renumbering_loses_no_op(app, client):
    """A request still in flight when the tablet renumbered must not swallow a later op.

    The tablet's counter jumped (A=1, B=3); the server answers 409 after A, the tablet
    renumbers B to 2, and B is applied. Then the first request (A=1, B=3) arrives again
    (a retry by a proxy, or a request that was stuck): B at seq 3 is last + 1, its id is
    known, and the server answers it `duplicate` while advancing last_seq to 3. The
    tablet's next op C takes seq 3 and is answered `duplicate` of B: C is never applied.
    """
    base = hour_floor(now_utc(), zone("UTC"))
    world = world_make(base, 1)
    box = Outbox(device=world.devices[0][0], token=world.devices[0][2])
    make = [op_make(world, 0, i, ("note", 0, 1, "ate well")) for i in range(3)]
    network = Network(client)
    box.record(make[0])
    box.record(make[1], skip=1)
    stale = box.batch(2)
    network.send(box, stale, "ok")  # A applied, 409 at B, B renumbered to 2
    assert [op["seq"] for op in box.pending] == [2]
    network.send(box, box.batch(5), "ok")  # B applied at 2
    assert not box.pending
    network.deliver(box.token, box.body(stale))  # the stale request again
    box.record(make[2])
    network.send(box, box.batch(5), "ok")
    applied = {r.op_id for r in sync_records() if r.status in FIRST_STATUSES}
    assert make[2]["id"] in applied, "op C was answered duplicate and never applied"
    assert device_last_seq(world.devices[0][1]) == box.next_seq - 1


@pytest.mark.parametrize("fate", ["lost_answer", "duplicated"])
def test_second_completion_on_another_tablet_is_a_conflict_never_lost(app, client, fate):
    """Two tablets complete the same task: one completion stands, the other is a conflict."""
    base = hour_floor(now_utc(), zone("UTC"))
    world = world_make(base, 2)
    network = Network(client)
    boxes = [Outbox(device=d, token=t) for d, _, t in world.devices]
    for d, box in enumerate(boxes):
        box.record(op_make(world, d, 0, ("complete", 0, 2, False)))
        network.send(box, box.batch(1), fate)
        while box.pending:
            network.send(box, box.batch(1), "ok")
    statuses = sorted(r.status for r in sync_records() if r.status in FIRST_STATUSES)
    assert statuses == ["applied", "conflict"]
    state = domain_snapshot()
    assert [c[0][5] for c in state["completions"]] == [False, True]
    assert db.session.scalar(select(db.func.count()).select_from(Device)) == 2


def test_domain_events_of_a_batch_fire_only_after_it_commits(app, client):
    """Pokes and flows see committed changes only (ARCHITECTURE.md: side effects after commit).

    Every handler call checks, on a connection of its own, that the note it is told about
    is committed; a savepoint released mid-batch is not a commit.
    """
    from sqlalchemy import text as sql

    from kiosk.core import events

    base = hour_floor(now_utc(), zone("UTC"))
    world = world_make(base, 1)
    box = Outbox(device=world.devices[0][0], token=world.devices[0][2])
    for i in range(3):
        box.record(op_make(world, 0, i, ("note", 0, 1, "ate well")))
    seen = []

    def handler(evt):
        if evt.name == "note.added":
            with db.engine.connect() as conn:  # its own connection: committed rows only
                seen.append(conn.execute(sql("SELECT count(*) FROM notes")).scalar())

    events.event_subscribe("note.added", handler)
    try:
        Network(client).send(box, box.batch(3), "ok")
    finally:
        events._handlers["note.added"].remove(handler)
    assert seen == [3, 3, 3], f"handlers ran before the batch committed (notes seen: {seen})"
