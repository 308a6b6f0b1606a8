"""Shared helpers for the sync tests: a faithful device outbox, requests, and state snapshots.

The outbox follows SYNC.md (and static/js/outbox.js): ops are numbered 1, 2, 3 … when they
are recorded; an answer's `last_seq` removes every op with `seq <= last_seq`; a 409
`sequence_gap` renumbers the pending ops from `last_seq + 1`, keeping their order and ids.
"""

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from kiosk.core import clock
from kiosk.core.audit import AuditEntry
from kiosk.devices.models import Device
from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.staff.models import User
from kiosk.sync.models import SyncOp
from kiosk.treatments.models import Note, Order, Task, TaskCompletion

ISO_Z = "%Y-%m-%dT%H:%M:%SZ"
NAMESPACE = uuid.UUID("6f1c1d5e-2b1a-4c39-9a57-0d0f3c1e8a11")
FIRST_STATUSES = ("applied", "conflict", "rejected")


def iso(value: datetime) -> str:
    """A UTC timestamp as SYNC.md writes it."""
    return value.astimezone(UTC).strftime(ISO_Z)


def now_utc() -> datetime:
    """The current time in UTC, to the second."""
    return clock.utcnow().replace(microsecond=0)


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
