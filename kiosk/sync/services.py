"""Processing a device's sync request (SYNC.md): in seq order, exactly once, never blocked.

Each op's effects, its stored record and the advance of the device's `last_seq` are
written in one transaction with the rest of the batch; a batch that dies half-way is
rolled back whole and its resend is processed as if new. Nothing here sees the request;
the view owns the transaction.

A batch is tried the quick way first: all its ops inside one savepoint, rows looked up
from one prefetch (`rows.BatchRows`). Almost every batch a tablet sends is a shift's
worth of valid work, and goes through like that. If any op is refused by its service, or
the database objects to anything, that savepoint is rolled back and the batch is processed
again the careful way: a savepoint per op, so a refused op's effects are taken back alone
and the ops after it still apply. Both ways call the same services in the same order, so
they answer the same; tests run batches both ways and compare.
"""

import logging
import math
import random
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import lazyload, load_only

from ..core import clock
from ..core.audit import audit_rows_together
from ..core.clock import as_utc
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import INT_MAX
from ..devices.models import DeviceEvent, SyncOp
from ..extensions import db
from ..staff.models import User
from .ops import CONFLICT_CODES, CREATED_BY, REGISTRY, OpContext
from .rows import BatchRows, batch_rows_end, batch_rows_start

log = logging.getLogger(__name__)

MAX_OPS = 500
MAX_BYTES = 2 * 1024 * 1024
SKEW_FLAG = timedelta(minutes=5)
LEVEL_NAMES = {"applied", "conflict", "rejected"}
# A rejected op's args are kept for review unless they are this large (a fuzzer's megabytes).
MAX_KEPT_ARGS = 20_000
ERR_SERVER_FAULT = ("The server could not apply this change (a fault on the server, not the "
                    "tablet's); it is kept for a manager to review.")


class SyncRefused(Exception):
    """The whole request is refused (HTTP status and a JSON body); nothing was applied."""

    def __init__(self, status: int, error: str, message: str, **extra):
        super().__init__(message)
        self.status, self.body = status, {"error": error, "message": message, **extra}


class TransientFailure(Exception):
    """The database is busy or down: stop, keep what was done, ask the device to retry."""


class CarefulWay(Exception):
    """The quick way cannot take this batch (nothing of it is kept); the careful way can."""


IN_THIS_BATCH = object()  # batch.known's mark for a record the quick way has yet to write


@dataclass
class Batch:
    """What a request asked for, once its envelope was checked."""

    ops: list[dict]
    sent_at: datetime
    received_at: datetime
    pending: int | None = None
    oldest_at: datetime | None = None
    # Patients the outbox's ops touch, and those it holds a discharge for (None: not told).
    patients: list[str] | None = None
    discharges: list[str] | None = None
    client: dict = field(default_factory=dict)
    results: list[dict] = field(default_factory=list)
    # Filled by sync_process: earlier records by op id and by seq, staff by id.
    known: dict = field(default_factory=dict)
    by_seq: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)
    # The quick way's rows by uid (None the careful way, where every op asks the database),
    # and the op records it writes at the end of the batch.
    rows: BatchRows | None = None
    records: list[dict] = field(default_factory=list)

    @property
    def skew(self) -> timedelta:
        """Server receive time minus the device's sent_at."""
        return self.received_at - self.sent_at


def _timestamp(value) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return as_utc(parsed) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        return None


def batch_read(body, *, device, received_at: datetime) -> Batch:
    """Check the request's shape; SyncRefused (400/401/413) if it cannot be processed."""
    if not isinstance(body, dict):
        raise SyncRefused(400, "bad_request", "The body must be a JSON object.")
    if body.get("device") != device.public_id:
        raise SyncRefused(401, "unauthorized", "This token is not the token of that device.")
    ops = body.get("ops")
    if not isinstance(ops, list):
        raise SyncRefused(400, "bad_request", "“ops” must be a list (empty for a heartbeat).")
    if len(ops) > MAX_OPS:
        raise SyncRefused(413, "too_large", f"At most {MAX_OPS} ops per request; send "
                          "the rest in the next one.", max_ops=MAX_OPS)
    sent_at = _timestamp(body.get("sent_at"))
    if sent_at is None:
        raise SyncRefused(400, "bad_request", "“sent_at” must be a timestamp like "
                          "2026-11-22T10:20:00Z.")
    for index, op in enumerate(ops):
        seq = op.get("seq") if isinstance(op, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise SyncRefused(400, "bad_request", f"Op {index} has no valid “seq” (a whole "
                              "number from 1); nothing was applied.", index=index)
        if index and seq <= ops[index - 1]["seq"]:
            raise SyncRefused(400, "bad_request", "Ops must be in increasing seq order; "
                              "nothing was applied.", index=index)
    outbox = body.get("outbox") if isinstance(body.get("outbox"), dict) else {}
    pending = outbox.get("pending")
    if not isinstance(pending, int) or isinstance(pending, bool) or pending < 0:
        pending = None
    return Batch(ops=ops, sent_at=sent_at, received_at=received_at,
                 pending=None if pending is None else min(pending, INT_MAX),
                 oldest_at=_timestamp(outbox.get("oldest_at")),
                 patients=uid_list_read(outbox.get("patients")),
                 discharges=uid_list_read(outbox.get("discharges")),
                 client=client_read(body.get("client")))


def uid_list_read(value) -> list[str] | None:
    """The uids the outbox reports (at most 500; what is not a uid is left out), or None
    when absent: like the client's extras, never a reason to refuse a heartbeat."""
    if not isinstance(value, list) or len(value) > MAX_OPS:
        return None
    out = set()
    for item in value:
        if isinstance(item, str) and len(item) <= 40:
            try:
                out.add(str(uuid.UUID(item)))
            except ValueError:
                continue  # one bad entry never hides the patients named rightly
    return sorted(out)


def client_read(client) -> dict:
    """What the tablet's browser says of itself (app version, battery), as far as it makes
    sense; anything else is left out: a heartbeat is never refused for its extras."""
    if not isinstance(client, dict):
        return {}
    out = {}
    version = client.get("app_version")
    if isinstance(version, str) and 0 < len(version) <= 40 and version.isprintable():
        out["app_version"] = version
    battery = client.get("battery")
    if isinstance(battery, int | float) and not isinstance(battery, bool) and 0 <= battery <= 1:
        out["battery_pct"] = round(battery * 100)
    if isinstance(client.get("charging"), bool):
        out["battery_charging"] = client["charging"]
    return out


# How long a sync request waits in line for its turn to write before it is told to come
# back (503 with Retry-After): a tablet's request never hangs, and its outbox keeps the ops.
TURN_WAIT_S = 3.0


class WriteTurns:
    """At most `slots` sync batches write at once in this process; the others wait in
    arrival order (first come, first served: no tablet is overtaken for ever), each for
    at most a given time. Also keeps how long a turn takes, to say when to come back."""

    def __init__(self, slots: int):
        self.slots = slots
        self._busy = 0
        self._queue: deque[threading.Lock] = deque()
        self._lock = threading.Lock()
        self._turn_s = 0.2  # a moving average of how long a turn is held

    def acquire(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a turn; whether it came."""
        with self._lock:
            if self._busy < self.slots and not self._queue:
                self._busy += 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._queue.append(waiter)
        if waiter.acquire(timeout=max(0.0, timeout)):
            return True  # release() handed its turn over
        with self._lock:
            try:
                self._queue.remove(waiter)
                return False
            except ValueError:
                return True  # handed over just as the wait ran out: the turn is ours

    def release(self, held_s: float) -> None:
        """End a turn (held for `held_s` seconds): the next in line takes it at once."""
        with self._lock:
            self._turn_s = 0.8 * self._turn_s + 0.2 * held_s
            if self._queue:
                self._queue.popleft().release()
            else:
                self._busy -= 1

    def retry_after(self) -> int:
        """Seconds after which a request sent away now will likely find the line short:
        the line's length in turns, spread out (the tablets sent away together must not
        all come back together), at least 1 and at most 60."""
        with self._lock:
            ahead = (len(self._queue) + self._busy) * self._turn_s / self.slots
        return max(1, min(60, math.ceil(ahead * random.uniform(0.75, 1.5))))  # noqa: S311


@contextmanager
def write_turn(timeout: float | None = None):
    """Wait for this request's turn to write a sync batch, holding no connection meanwhile;
    yields whether the turn came within `timeout` (TURN_WAIT_S unless told) — if not, the
    caller answers busy.

    The turns are counted per process (configure_database sizes them): one on SQLite, which
    has one writer anyway (a request waiting in SQLite's busy handler sleeps up to 100 ms
    at a time while the database may sit idle, so one unlucky tablet could wait seconds
    behind the others); two on PostgreSQL (the work is mostly Python, one core per
    process), so a crowd of tablets back from an outage leaves connections for sign-in and
    pages. The caller must not hold
    a pooled connection while it waits here: the requests ahead of it need them to finish.
    """
    turns = current_app.extensions.get("kiosk.write_turns")
    if turns is None:  # an application configured without them (a bare script)
        yield True
        return
    if not turns.acquire(TURN_WAIT_S if timeout is None else timeout):
        yield False
        return
    began = time.monotonic()
    try:
        yield True
    finally:
        turns.release(time.monotonic() - began)


def busy_retry_after() -> int:
    """Retry-After (seconds) for a sync request that did not get its turn in time."""
    turns = current_app.extensions.get("kiosk.write_turns")
    return turns.retry_after() if turns is not None else 5


def device_lock(device_id: int):
    """The device (by id), its row locked for this transaction: two requests of one
    device are processed one after the other, never interleaved.

    PostgreSQL locks the row. SQLite has one writer: the transaction takes the write lock
    at once (BEGIN IMMEDIATE), so concurrent syncs queue on the busy timeout instead of
    failing when a read snapshot turns out stale at their first write.
    """
    from ..devices.models import Device

    connection = db.session.connection()
    if connection.dialect.name == "sqlite" and \
            not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    return db.session.scalar(select(Device).where(Device.id == device_id)
                             .options(lazyload(Device.board)).with_for_update(of=Device)
                             .execution_options(populate_existing=True))


def sync_heartbeat(*, device, batch: Batch) -> None:
    """Note what the device reported: when it was seen, its outbox and its clock skew."""
    skew_ms = max(-INT_MAX, min(INT_MAX, int(batch.skew.total_seconds() * 1000)))
    limit_ms = SKEW_FLAG.total_seconds() * 1000
    was_flagged = device.skew_ms is not None and abs(device.skew_ms) > limit_ms
    device.last_seen_at = batch.received_at
    device.skew_ms = skew_ms
    if batch.pending is not None:
        device.outbox_pending = batch.pending
        device.outbox_oldest_at = batch.oldest_at
    if batch.patients is not None:
        device.outbox_patients = batch.patients
    if batch.discharges is not None and batch.discharges != (device.outbox_discharges or []):
        for uid in set(batch.discharges) ^ set(device.outbox_discharges or []):
            event_record(db.session, "patient.changed", patient=uid)  # pending boards
        device.outbox_discharges = batch.discharges
    for key, value in batch.client.items():
        setattr(device, key, value)
    event_record(db.session, "device.synced", device=device.id)
    if abs(batch.skew) > SKEW_FLAG and not was_flagged:
        db.session.add(DeviceEvent(device_id=device.id, kind="skew",
                                   detail={"skew_ms": skew_ms}))


# The quick way is tried for batches of this many new ops or more (one op gains nothing).
QUICK_FROM = 2


def sync_process(*, device, batch: Batch) -> dict:
    """Apply the batch's ops in order; the answer SYNC.md describes, or 409 on a gap.

    Raises SyncRefused(409) on a sequence gap and TransientFailure when the database
    fails; ops processed before either are kept in the session for the caller to commit,
    with `last_seq` at the last of them.
    """
    _prefetch(device, batch)
    if sum(op["seq"] > device.last_seq for op in batch.ops) >= QUICK_FROM:
        answer = _quick(device, batch)
        if answer is not None:
            return answer
    batch_rows_start()  # the careful way uses it only to hold what the batch loaded
    try:
        return _run(device, batch)
    finally:
        batch_rows_end()


def _quick(device, batch: Batch) -> dict | None:
    """The batch in one savepoint; None (and nothing kept) if it must go the careful way."""
    known = dict(batch.known)
    events = db.session.info.setdefault("pending_events", [])
    mark = len(events)
    batch.rows = batch_rows_start()
    try:
        with db.session.begin_nested():
            batch.rows.prefetch(batch.ops)
            with audit_rows_together():
                answer = _run(device, batch)
            if batch.records:
                db.session.execute(insert(SyncOp), batch.records)
            return answer
    except Exception as exc:  # noqa: BLE001 - whatever it was, the careful way meets it again
        del events[mark:]
        batch.results.clear()
        batch.records.clear()
        batch.known = known
        if not db.session.is_active:  # the savepoint could not even be taken back
            raise TransientFailure(str(exc)[:200]) from exc
        # A flush that fails rolls the savepoint back at once, before the exception gets
        # here: whatever touched the device since must not outlive it. Read it again as
        # the savepoint began (its heartbeat was flushed then).
        db.session.expire(device)
        log.debug("sync batch of %s goes the careful way: %s", device.public_id, exc)
        return None
    finally:
        batch.rows = None
        batch_rows_end()


def _run(device, batch: Batch) -> dict:
    last = device.last_seq
    try:
        for op in batch.ops:
            seq = op["seq"]
            if seq <= last:
                batch.results.append(_duplicate_by_seq(device, op, batch))
                continue
            if seq > last + 1:
                db.session.add(DeviceEvent(device_id=device.id, kind="gap",
                                           detail={"last_seq": last, "got": seq}))
                raise SyncRefused(409, "sequence_gap", f"Expected seq {last + 1}, "
                                  f"got {seq}; renumber pending ops from there.",
                                  last_seq=last)
            batch.results.append(_process_next(device, op, batch))
            last = seq
    except BaseException:
        if batch.rows is None:  # the careful way keeps the ops before a gap or a failure
            device.last_seq = last
            _pending_after(device, batch)
        raise
    device.last_seq = last  # written once, with the ops, in the same transaction
    _pending_after(device, batch)
    device.last_sync_at = batch.received_at
    return {"last_seq": device.last_seq,
            "server_time": utcnow_ms(),
            "results": batch.results}


def _pending_after(device, batch: Batch) -> None:
    """What still waits on the device once it reads this answer: what it reported, less
    the ops of this request the server now holds."""
    if batch.pending is None:
        return
    device.outbox_pending = max(0, batch.pending - len(batch.results))
    if device.outbox_pending == 0:
        device.outbox_oldest_at = None
        device.outbox_patients = []
        device.outbox_discharges = []


def _prefetch(device, batch: Batch) -> None:
    """What the batch's ops were before, in two queries instead of one or two per op."""
    ids = {op["id"] for op in batch.ops if op["seq"] > device.last_seq and _id_ok(op.get("id"))}
    for chunk in _chunks(sorted(ids)):
        # Repeats (original_id set) and id_reused records (op_id blank) never shadow the first.
        for record in db.session.scalars(select(SyncOp).where(
                SyncOp.op_id.in_(chunk), SyncOp.status.in_(LEVEL_NAMES),
                SyncOp.original_id.is_(None)).order_by(SyncOp.id.desc())):
            batch.known[record.op_id] = record  # descending: the first one wins
    old = [op["seq"] for op in batch.ops if op["seq"] <= device.last_seq]
    for chunk in _chunks(old):
        # A repeat's answer needs its status and result, not its args.
        for record in db.session.scalars(select(SyncOp).where(
                SyncOp.device_id == device.id, SyncOp.seq.in_(chunk)).options(
                    load_only(SyncOp.id, SyncOp.seq, SyncOp.op_id, SyncOp.status,
                              SyncOp.result, SyncOp.original_id))):
            batch.by_seq[record.seq] = record


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def utcnow_ms() -> str:
    """The server's time as 2026-11-22T10:20:00.412Z."""
    now = clock.utcnow_exact()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _content(op: dict) -> dict:
    return {"name": op.get("name"), "args": op.get("args"), "at": op.get("at"),
            "user": op.get("user")}


def _answer(op: dict, status: str, result: dict, *, duplicate: bool = False) -> dict:
    answer = {"id": op.get("id"), "seq": op["seq"]}
    if duplicate:
        answer["status"] = "duplicate"
        answer["original_status"] = status
    else:
        answer["status"] = status
    if status == "rejected":
        answer["error"] = result.get("error", {})
    else:
        answer["result"] = result
    return answer


def _duplicate_by_seq(device, op: dict, batch: Batch) -> dict:
    """An op at an old seq: nothing applied again; answer with what that seq produced."""
    record = batch.by_seq.get(op["seq"])
    if record is None:  # processed before records were kept: nothing to repeat
        return {"id": op.get("id"), "seq": op["seq"], "status": "duplicate", "result": {}}
    if record.original_id is not None:
        record = db.session.get(SyncOp, record.original_id)
    if record.op_id != op.get("id"):
        # Not the op that used this seq: keep it on the device's history, never silently.
        db.session.add(DeviceEvent(device_id=device.id, kind="stale_seq",
                                   detail={"op": {k: op.get(k) for k in
                                                  ("id", "seq", "name", "args", "at", "user")}}))
    return _answer(op, record.status, record.result, duplicate=True)


def _process_next(device, op: dict, batch: Batch) -> dict:
    """The op at last_seq + 1: a repeat of a known id, or new and applied through its service."""
    original = batch.known.get(op.get("id")) if _id_ok(op.get("id")) else None
    if original is IN_THIS_BATCH:  # its record is not written yet: the careful way has it
        raise CarefulWay("an op repeated within its own batch")
    if original is not None:
        if _content(op) != {"name": original.name, "args": original.args,
                            "at": original.device_at, "user": original.user_ref}:
            return _store(device, op, batch, "rejected", error=DomainError(
                "id_reused", "This op id was used before for a different op."))
        if original.device_id == device.id and original.seq != op["seq"]:
            # This device sent the op under another seq: a request from before the tablet
            # renumbered. Taking this seq for it would swallow the op the tablet gave it since.
            last = op["seq"] - 1
            db.session.add(DeviceEvent(device_id=device.id, kind="stale_seq", detail={
                "id": original.op_id, "seq": op["seq"], "first_seq": original.seq}))
            raise SyncRefused(409, "sequence_gap", f"Op {original.op_id} was processed as seq "
                              f"{original.seq}; renumber pending ops after {last}.",
                              last_seq=last)
        db.session.add(SyncOp(device_id=device.id, seq=op["seq"], op_id=original.op_id,
                              name=original.name, args=original.args,
                              user_ref=original.user_ref, device_at=original.device_at,
                              status="duplicate", result=original.result,
                              original_id=original.id, received_at=batch.received_at))
        return _answer(op, original.status, original.result, duplicate=True)
    return _apply(device, op, batch)


def _apply(device, op: dict, batch: Batch) -> dict:
    spec = REGISTRY.get(op.get("name")) if isinstance(op.get("name"), str) else None
    try:
        _envelope_check(op)
        if spec is None:
            raise DomainError("unknown_op", f"There is no op called “{str(op.get('name'))[:60]}”.")
        user = _user(op.get("user"), batch)
        try:
            at = _timestamp(op.get("at")) + batch.skew
        except OverflowError:
            raise DomainError("bad_time", "“at” is too far from the device's clock.") from None
        ctx = OpContext(user=user, device=device, at=min(at, batch.received_at),
                        now=batch.received_at, rows=batch.rows, skew=batch.skew)
    except DomainError as exc:
        return _store(device, op, batch, "rejected", error=exc)
    if batch.rows is not None:  # the quick way: a refusal sends the whole batch the careful way
        result = spec.apply(op["args"], ctx)
    else:
        try:
            result = _apply_alone(spec, op, ctx)
        except DomainError as exc:
            exc = _after_conflict(device, op, exc)
            status = "conflict" if exc.code in CONFLICT_CODES else "rejected"
            return _store(device, op, batch, status, error=exc, at=ctx.at,
                          patient=spec.patient_of(op["args"]))
    status = "conflict" if result.get("conflict") else "applied"
    return _store(device, op, batch, status, result=result, at=ctx.at,
                  patient=ctx.patient or spec.patient_of(op["args"]))


def _after_conflict(device, op: dict, exc: DomainError) -> DomainError:
    """A sheet, form, order or patient this device started was a conflict, so a later op on
    it finds nothing: that op is a conflict too, named so, never a `rejected` mistake."""
    if exc.code != "not_found":
        return exc
    # (A task of an order made offline names that order: not found, it is the order.)
    named = {key: op["args"][key] for key in (exc.field,)
             if key in CREATED_BY and isinstance(op["args"].get(key), str)}
    if not named:
        return exc
    creators = {CREATED_BY[key][0]: key for key in named}
    for name, args in db.session.execute(select(SyncOp.name, SyncOp.args).where(
            SyncOp.device_id == device.id, SyncOp.name.in_(creators),
            SyncOp.status == "conflict")):
        key = creators[name]
        if isinstance(args, dict) and args.get(key) == named[key]:
            return DomainError("after_conflict", f"Not applied: it belongs to "
                               f"{CREATED_BY[key][1]} this tablet started, which was not "
                               "accepted (see that change, in “Needs attention” too).",
                               field=key)
    return exc


def _apply_alone(spec, op: dict, ctx: OpContext) -> dict:
    """The op in its own savepoint: refused, its effects and its events are taken back."""
    events = db.session.info.setdefault("pending_events", [])
    mark = len(events)
    try:
        with db.session.begin_nested():
            return spec.apply(op["args"], ctx)
    except DomainError:
        del events[mark:]  # what the refused op recorded is never broadcast
        raise
    except OperationalError as exc:
        del events[mark:]
        raise TransientFailure(str(exc.orig)[:200]) from exc
    except DataError:
        # A value the database cannot hold (a number too large, a stray control character):
        # the savepoint took the op's effects back.
        del events[mark:]
        raise DomainError("bad_args", "A value in this op cannot be stored.") from None
    except IntegrityError:
        del events[mark:]  # another request won a race: the view asks for a resend
        raise
    except Exception:  # noqa: BLE001 - a fault of ours must not wedge the tablet's outbox
        # Whatever the op's content made the server trip on, the savepoint took its effects
        # back: the op is refused and kept for review, and the ops behind it still apply.
        # Logged with its name and the traceback, never its arguments (they hold notes).
        del events[mark:]
        log.exception("op %s failed on the server; refused and kept for review",
                      str(op.get("name"))[:60])
        raise DomainError("server_error", ERR_SERVER_FAULT) from None


def _id_ok(op_id) -> bool:
    return isinstance(op_id, str) and 1 <= len(op_id) <= 64 and op_id.isprintable()


def _envelope_check(op: dict) -> None:
    if not _id_ok(op.get("id")):
        raise DomainError("bad_op", "Every op needs an “id” (UUID text).")
    if not isinstance(op.get("args"), dict):
        raise DomainError("bad_args", "“args” must be an object.")
    if _timestamp(op.get("at")) is None:
        raise DomainError("bad_time", "“at” must be a timestamp like 2026-11-22T10:15:03Z.")


def _user(ref, batch: Batch) -> User:
    user_id = int(ref[2:]) if isinstance(ref, str) and ref.startswith("u_") \
        and ref[2:].isdigit() and len(ref) < 20 else None
    if user_id not in batch.users:  # held for the batch (the session's map is weak)
        batch.users[user_id] = db.session.get(User, user_id) if user_id else None
    user = batch.users[user_id]
    if user is None or not user.active:
        raise DomainError("unknown_user", "The op's “user” is not an active staff member.")
    return user


def _clean(text: str) -> str:
    """Text as kept on the op's record: NUL (which PostgreSQL cannot store) replaced."""
    return text.replace("\x00", "\ufffd")


def _store(device, op: dict, batch: Batch, status: str, *, result: dict | None = None,
           error: DomainError | None = None, at=None, patient=None) -> dict:
    if error is not None:
        body = {"code": error.code, "message": error.message}
        if error.field:
            body["field"] = error.field
        result = {"conflict": error.code, "message": error.message} \
            if status == "conflict" else {"error": body}
    op_id = _clean(op.get("id")) if isinstance(op.get("id"), str) else None
    args = op.get("args")
    if not isinstance(args, dict) or (status == "rejected" and len(str(args)) > MAX_KEPT_ARGS):
        args = {"_not_kept": "the args were not an object, or too large to keep"}
    row = {"device_id": device.id, "seq": op["seq"], "op_id": (op_id or "")[:64],
           "name": _clean(str(op.get("name")))[:60], "args": args,
           "user_ref": _clean(str(op.get("user")))[:40] if op.get("user") is not None
           else None,
           "device_at": _clean(str(op.get("at")))[:40] if op.get("at") is not None else None,
           "corrected_at": at, "received_at": batch.received_at, "status": status,
           "result": result, "patient_uid": patient, "original_id": None,
           "dismissed_at": None}
    if error is not None and error.code == "id_reused":
        row["op_id"] = ""  # the id belongs to the first op; this record must not shadow it
    if status == "conflict" and row["name"] == "patient.discharge" and patient:
        # Asked for and refused: the pending boards show it until someone looks at it.
        event_record(db.session, "patient.changed", patient=patient)
    if batch.rows is not None:  # the quick way writes the batch's records in one INSERT
        batch.records.append(row)
        record = IN_THIS_BATCH
    else:
        record = SyncOp(**row)
        db.session.add(record)
    if row["op_id"]:
        batch.known.setdefault(row["op_id"], record)  # a repeat later in this batch
    return _answer(op, status, result)
