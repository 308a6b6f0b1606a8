"""Shared helpers for the sync tests: a faithful device outbox, requests, and state snapshots.

The outbox follows SYNC.md (and static/js/client/outbox.js): ops are numbered 1, 2, 3 … when they
are recorded; an answer's `last_seq` removes every op with `seq <= last_seq`; a 409
`sequence_gap` renumbers the pending ops from `last_seq + 1`, keeping their order and ids.
"""

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from kiosk.core import clock
from kiosk.core.audit import AuditEntry
from kiosk.devices.models import Device, SyncOp
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.patients.services import patient_create
from kiosk.staff.models import User
from kiosk.treatments.models import Note, Order, Task, TaskCompletion
from kiosk.treatments.services import order_create
from tests import factories

ISO_Z = "%Y-%m-%dT%H:%M:%SZ"
NAMESPACE = uuid.UUID("6f1c1d5e-2b1a-4c39-9a57-0d0f3c1e8a11")
FIRST_STATUSES = ("applied", "conflict", "rejected")


def iso(value: datetime) -> str:
    """A UTC timestamp as SYNC.md writes it."""
    return value.astimezone(UTC).strftime(ISO_Z)


def now_utc() -> datetime:
    """The clock's time in UTC, to the second."""
    return clock.utcnow()


def stable_uid(*parts) -> str:
    """A reproducible UUID for test data (so a reference database gets the same uids)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


def task_uid_for(order_uid: str, due_at: datetime) -> str:
    """The deterministic uid SYNC.md gives an order's task due at `due_at`."""
    return str(uuid.uuid5(uuid.UUID(order_uid), iso(due_at)))


# ---- The database ---------------------------------------------------------------------

def db_reset() -> None:
    """Empty every table (a fresh database for the next hypothesis example)."""
    db.session.remove()
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(t.name for t in reversed(db.metadata.sorted_tables))
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
            if _has_sequence(conn):
                conn.execute(text("DELETE FROM sqlite_sequence"))
            conn.execute(text("PRAGMA foreign_keys=ON"))


def _has_sequence(conn) -> bool:
    return conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'")
                        ).scalar() > 0


DOMAIN_TABLES = {"patients": Patient, "orders": Order, "tasks": Task, "notes": Note,
                 "completions": TaskCompletion, "audit": AuditEntry}


def domain_counts() -> dict[str, int]:
    """Row counts of the tables ops change (and the audit log every change writes)."""
    db.session.expire_all()
    return {name: db.session.scalar(select(func.count()).select_from(model))
            for name, model in DOMAIN_TABLES.items()}


def domain_snapshot() -> dict:
    """The domain state by public uid, comparable between two databases."""
    db.session.expire_all()
    users = {u.id: u.public_id for u in db.session.scalars(select(User))}
    tasks = {t.id: t.uid for t in db.session.scalars(select(Task))}
    patients = {p.id: p.uid for p in db.session.scalars(select(Patient))}
    return {
        "patients": sorted((p.uid, p.name, p.status, p.unallocated)
                           for p in db.session.scalars(select(Patient))),
        "orders": sorted((o.uid, patients[o.patient_id], o.name, o.status)
                         for o in db.session.scalars(select(Order))),
        "tasks": sorted((t.uid, t.status, users.get(t.done_by_id), t.done_device_id, t.value,
                         t.note, t.skip_reason) for t in db.session.scalars(select(Task))),
        "notes": sorted((n.uid, patients[n.patient_id], users[n.user_id], n.device_id, n.text)
                        for n in db.session.scalars(select(Note))),
        "completions": sorted(Counter(
            (tasks[c.task_id], users[c.user_id], c.device_id, c.value, c.note, c.duplicate,
             c.conflict) for c in db.session.scalars(select(TaskCompletion))).items(), key=repr),
    }


def sync_records() -> list[SyncOp]:
    """Every stored op record, in the order the server wrote them."""
    db.session.expire_all()
    return list(db.session.scalars(select(SyncOp).order_by(SyncOp.id)))


def device_last_seq(device_id: int) -> int:
    """The server's last processed seq for a device."""
    db.session.expire_all()
    return db.session.get(Device, device_id).last_seq


# ---- Requests -------------------------------------------------------------------------

def sync_body(device: str, ops: list[dict], *, pending: int | None = None,
              sent_at: datetime | None = None) -> dict:
    """A request body as a tablet sends it."""
    body = {"device": device, "sent_at": iso(sent_at or now_utc()), "ops": ops}
    if pending is not None:
        body["outbox"] = {"pending": pending, "oldest_at": ops[0]["at"] if ops else None}
    return body


def sync_post(client, token: str, body, *, raw: bytes | None = None):
    """POST /api/sync through the Flask test client in a fresh session: (status, json|None)."""
    db.session.remove()  # each request gets its own unit of work, as in production
    data = raw if raw is not None else json.dumps(body)
    try:
        response = client.post("/api/sync", data=data, content_type="application/json",
                               headers={"Authorization": f"Bearer {token}"})
    except Exception as exc:  # noqa: BLE001 - the testing config propagates what would be a 500
        db.session.remove()
        return 500, {"error": "internal", "exception": f"{type(exc).__name__}: {exc}"[:500]}
    db.session.remove()
    try:
        payload = json.loads(response.get_data())
    except ValueError:
        payload = None
    return response.status_code, payload


# ---- The device -----------------------------------------------------------------------

@dataclass
class Outbox:
    """A tablet's outbox as SYNC.md describes it: pending ops in seq order, a seq counter."""

    device: str
    token: str
    pending: list[dict] = field(default_factory=list)
    next_seq: int = 1
    renumbered: int = 0
    attention: dict[str, dict] = field(default_factory=dict)

    def record(self, op: dict, *, skip: int = 0) -> dict:
        """Number an op (optionally jumping the counter by `skip`) and keep it."""
        seq = max(self.next_seq + skip, self.pending[-1]["seq"] + 1 if self.pending else 1)
        stored = {**op, "seq": seq}
        self.pending.append(stored)
        self.next_seq = seq + 1
        return stored

    def batch(self, size: int, *, start: int = 0) -> list[dict]:
        """Copies of up to `size` pending ops from `start` (0: the head, as the tablet does)."""
        return [dict(op) for op in self.pending[start:start + size]]

    def body(self, ops: list[dict]) -> dict:
        """The request body for these ops."""
        return sync_body(self.device, ops, pending=len(self.pending))

    def settle(self, status: int, answer) -> None:
        """What the tablet does with an answer it received."""
        if not isinstance(answer, dict) or not isinstance(answer.get("last_seq"), int):
            return  # a 4xx/5xx without last_seq: keep everything, try again later
        last = answer["last_seq"]
        self.pending = [op for op in self.pending if op["seq"] > last]
        for result in answer.get("results", []) if status == 200 else []:
            state = result.get("original_status") or result.get("status")
            if state in ("rejected", "conflict"):
                self.attention.setdefault(result["id"], result)
        if status == 409:
            for index, op in enumerate(self.pending):
                op["seq"] = last + 1 + index
            self.renumbered += 1
            self.next_seq = last + 1 + len(self.pending)
        else:
            self.next_seq = max(self.next_seq, last + 1)


# ---- Generated worlds and ops (the property tests and the quick-way tests) ------------

SETTINGS = settings(max_examples=50, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])

WORLD_PATIENTS = 2
STREAM_ORDERS = 3  # order uids the tablets may create offline
STREAM_PATIENTS = 2  # patient uids the tablets may create offline
STREAM_DUES = 5  # tasks of a stream order: hourly from base - 2 h to base + 2 h


# ---- The world both databases start from ------------------------------------------------

@dataclass
class World:
    """What a fresh database holds before the tablets act."""

    base: object
    users: dict[int, str]
    devices: list[tuple[str, int, str]]  # public id, row id, token
    tasks: list[tuple[str, bool]]  # uid, needs a value


def world_make(base, devices: int) -> World:
    """Users of levels 1–6, two admitted patients with orders, `devices` tablets."""
    clinic = factories.clinic_make()
    vet = clinic.user(6)
    tasks = []
    for index in range(WORLD_PATIENTS):
        patient = patient_create(user=vet, origin="pims", uid=stable_uid("patient", index),
                                 data={"name": f"Patient {index}", "species": "canine",
                                       "ward": clinic.ward, "pims_id": f"P-{index}"})
        orders = [("Methadone", "medication", 2)]
        if index == 0:
            orders.append(("Temperature", "observation", 4))
        for name, kind, every in orders:
            order = order_create(user=vet, patient=patient, now=base,
                                 uid=stable_uid("order", index, name),
                                 data={"name": name, "kind": kind, "every_hours": every,
                                       "start": base - timedelta(hours=6),
                                       "end": base + timedelta(hours=6)})
            db.session.flush()
            due = order.start_at
            while due <= order.end_at:
                tasks.append((task_uid_for(order.uid, due), kind == "observation"))
                due += timedelta(hours=every)
    made = [device_provision(name=f"Tablet {n}", colour="blue", number=n)
            for n in range(1, devices + 1)]
    db.session.commit()
    return World(base=base, users={lv: u.public_id for lv, u in clinic.users.items()},
                 devices=[(d.public_id, d.id, token) for d, token in made], tasks=tasks)


def stream_order_uid(slot: int) -> str:
    """The uid of an order a tablet may create offline."""
    return stable_uid("stream-order", slot)


def stream_patient_uid(slot: int) -> str:
    """The uid of a patient a tablet may create offline."""
    return stable_uid("stream-patient", slot)


def patient_uids() -> list[str]:
    """Patients an op may name: the world's, then those tablets may create."""
    return [stable_uid("patient", i) for i in range(WORLD_PATIENTS)] + \
        [stream_patient_uid(s) for s in range(STREAM_PATIENTS)]


# ---- Ops --------------------------------------------------------------------------------

intents = st.one_of(
    st.tuples(st.just("complete"), st.integers(0, 40), st.integers(1, 6), st.booleans()),
    st.tuples(st.just("complete"), st.integers(0, 40), st.integers(1, 6), st.booleans()),
    st.tuples(st.just("skip"), st.integers(0, 40), st.integers(1, 6)),
    st.tuples(st.just("note"), st.integers(0, WORLD_PATIENTS + STREAM_PATIENTS - 1),
              st.integers(1, 6), st.sampled_from(["ate well", "restless", "vomited once"])),
    st.tuples(st.just("order"), st.integers(0, STREAM_ORDERS - 1),
              st.integers(0, WORLD_PATIENTS + STREAM_PATIENTS - 1), st.integers(1, 6)),
    st.tuples(st.just("patient"), st.integers(0, STREAM_PATIENTS - 1), st.integers(1, 6)),
    st.tuples(st.just("bogus"), st.integers(1, 6)),
)


def op_make(world: World, device: int, index: int, intent: tuple) -> dict:
    """The op a tablet records for an intent (deterministic, so both databases agree)."""
    kind = intent[0]
    at = iso(world.base - timedelta(minutes=50) + timedelta(seconds=index * 7 + device))
    op = {"id": stable_uid("op", device, index), "at": at}
    if kind in ("complete", "skip"):
        pick, level = intent[1], intent[2]
        if pick < len(world.tasks):
            uid, needs_value = world.tasks[pick]
            args = {"task": uid}
        else:  # a task of an order some tablet creates offline: named by uuid5
            slot, step = divmod(pick - len(world.tasks), STREAM_DUES)
            order_uid = stream_order_uid(slot % STREAM_ORDERS)
            due = world.base - timedelta(hours=2) + timedelta(hours=step)
            args = {"task": task_uid_for(order_uid, due), "order": order_uid,
                    "due_at": iso(due)}
            needs_value = False
        if kind == "complete":
            name = "task.complete"
            if needs_value or intent[3]:
                args["value"] = "38.5" if needs_value else "given"
        else:
            name, args["reason"] = "task.skip", "patient sleeping"
    elif kind == "note":
        name, level = "note.add", intent[2]
        args = {"note": stable_uid("note", device, index), "patient": patient_uids()[intent[1]],
                "text": f"{intent[3]} (tablet {device}, #{index})"}
    elif kind == "order":
        name, level = "order.create", intent[3]
        args = {"order": stream_order_uid(intent[1]), "patient": patient_uids()[intent[2]],
                "name": f"Fluids {intent[1]}", "kind": "fluid", "every_hours": 1,
                "start": iso(world.base - timedelta(hours=2)),
                "end": iso(world.base + timedelta(hours=2))}
    elif kind == "patient":
        name, level = "patient.create", intent[2]
        args = {"patient": stream_patient_uid(intent[1]), "name": f"Stray {intent[1]}",
                "species": "feline"}
    else:
        name, level, args = "scan.barcode", intent[1], {"code": "123"}
    return {**op, "name": name, "args": args, "user": world.users[level]}
