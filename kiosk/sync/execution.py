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

from blinker import Namespace
from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from ..core.audit import audit_rows_together
from ..core.errors import DomainError
from ..devices.models import DeviceEvent, SyncOp
from ..extensions import db
from ..staff.models import User
from .envelope import Batch, SyncRefused, device_time, utcnow_ms
from .heartbeat import pending_after
from .ops import CONFLICT_CODES, CREATED_BY, REGISTRY, OpContext
from .records import (
    IN_THIS_BATCH,
    duplicate_by_seq,
    op_answer,
    op_content,
    op_id_ok,
    op_store,
    records_prefetch,
)
from .rows import batch_rows_end, batch_rows_start

log = logging.getLogger(__name__)

_signals = Namespace()
# Sent once a batch was processed (or stopped), with the device and the way it went:
# "quick" (one savepoint), "back" (tried quickly, then redone the careful way) or
# "careful" (a savepoint per op from the start). For figures, and for tests to watch.
batch_processed = _signals.signal("sync-batch-processed")

ERR_SERVER_FAULT = ("The server could not apply this change (a fault on the server, not the "
                    "tablet's); it is kept for a manager to review.")


class TransientFailure(Exception):
    """The database is busy or down: stop, keep what was done, ask the device to retry."""


class CarefulWay(Exception):
    """The quick way cannot take this batch (nothing of it is kept); the careful way can."""


# The quick way is tried for batches of this many new ops or more (one op gains nothing).
QUICK_FROM = 2


def sync_process(*, device, batch: Batch) -> dict:
    """Apply the batch's ops in order; the answer SYNC.md describes, or 409 on a gap.

    Raises SyncRefused(409) on a sequence gap and TransientFailure when the database
    fails; ops processed before either are kept in the session for the caller to commit,
    with `last_seq` at the last of them.
    """
    records_prefetch(device, batch)
    way = "careful"
    try:
        if sum(op["seq"] > device.last_seq for op in batch.ops) >= QUICK_FROM:
            way = "quick"
            answer = _quick(device, batch)
            if answer is not None:
                return answer
            way = "back"
        batch_rows_start()  # the careful way uses it only to hold what the batch loaded
        try:
            return _run(device, batch)
        finally:
            batch_rows_end()
    finally:
        batch_processed.send(current_app._get_current_object(), device=device, way=way)


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
                batch.results.append(duplicate_by_seq(device, op, batch))
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
            pending_after(device, batch)
        raise
    device.last_seq = last  # written once, with the ops, in the same transaction
    pending_after(device, batch)
    device.last_sync_at = batch.received_at
    return {"last_seq": device.last_seq,
            "server_time": utcnow_ms(),
            "results": batch.results}


def _process_next(device, op: dict, batch: Batch) -> dict:
    """The op at last_seq + 1: a repeat of a known id, or new and applied through its service."""
    original = batch.known.get(op.get("id")) if op_id_ok(op.get("id")) else None
    if original is IN_THIS_BATCH:  # its record is not written yet: the careful way has it
        raise CarefulWay("an op repeated within its own batch")
    if original is not None:
        if op_content(op) != {"name": original.name, "args": original.args,
                            "at": original.device_at, "user": original.user_ref}:
            return op_store(device, op, batch, "rejected", error=DomainError(
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
        return op_answer(op, original.status, original.result, duplicate=True)
    return _apply(device, op, batch)


def _apply(device, op: dict, batch: Batch) -> dict:
    spec = REGISTRY.get(op.get("name")) if isinstance(op.get("name"), str) else None
    try:
        _envelope_check(op)
        if spec is None:
            raise DomainError("unknown_op", f"There is no op called “{str(op.get('name'))[:60]}”.")
        user = _user(op.get("user"), batch)
        try:
            at = device_time(op.get("at"), "at") + batch.skew
        except OverflowError:
            raise DomainError("bad_time", "“at” is too far from the device's clock.") from None
        ctx = OpContext(user=user, device=device, at=min(at, batch.received_at),
                        now=batch.received_at, rows=batch.rows, skew=batch.skew)
    except DomainError as exc:
        return op_store(device, op, batch, "rejected", error=exc)
    if batch.rows is not None:  # the quick way: a refusal sends the whole batch the careful way
        result = spec.apply(op["args"], ctx)
    else:
        try:
            result = _apply_alone(spec, op, ctx)
        except DomainError as exc:
            exc = _after_conflict(device, op, exc)
            status = "conflict" if exc.code in CONFLICT_CODES else "rejected"
            return op_store(device, op, batch, status, error=exc, at=ctx.at,
                          patient=spec.patient_of(op["args"]))
    status = "conflict" if result.get("conflict") else "applied"
    return op_store(device, op, batch, status, result=result, at=ctx.at,
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


def _envelope_check(op: dict) -> None:
    if not op_id_ok(op.get("id")):
        raise DomainError("bad_op", "Every op needs an “id” (UUID text).")
    if not isinstance(op.get("args"), dict):
        raise DomainError("bad_args", "“args” must be an object.")
    device_time(op.get("at"), "at")


def _user(ref, batch: Batch) -> User:
    user_id = int(ref[2:]) if isinstance(ref, str) and ref.startswith("u_") \
        and ref[2:].isdigit() and len(ref) < 20 else None
    if user_id not in batch.users:  # held for the batch (the session's map is weak)
        batch.users[user_id] = db.session.get(User, user_id) if user_id else None
    user = batch.users[user_id]
    if user is None or not user.active:
        raise DomainError("unknown_user", "The op's “user” is not an active staff member.")
    return user
