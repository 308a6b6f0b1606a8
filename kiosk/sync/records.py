"""The stored record of each op and the answer it gets: what an op was before (by id
and by seq), a repeat's answer, and the record written with the op's effects."""

from sqlalchemy import select
from sqlalchemy.orm import load_only

from ..core.errors import DomainError
from ..core.events import event_record
from ..devices.models import DeviceEvent, SyncOp
from ..extensions import db
from .envelope import Batch

LEVEL_NAMES = {"applied", "conflict", "rejected"}
# A rejected op's args are kept for review unless they are this large (a fuzzer's megabytes).
MAX_KEPT_ARGS = 20_000
IN_THIS_BATCH = object()  # batch.known's mark for a record the quick way has yet to write


def op_id_ok(op_id) -> bool:
    """Whether an op's `id` can be kept and looked up (short printable text)."""
    return isinstance(op_id, str) and 1 <= len(op_id) <= 64 and op_id.isprintable()



def records_prefetch(device, batch: Batch) -> None:
    """What the batch's ops were before, in two queries instead of one or two per op."""
    ids = {op["id"] for op in batch.ops if op["seq"] > device.last_seq and op_id_ok(op.get("id"))}
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



def op_content(op: dict) -> dict:
    """What an op said, to compare a repeat of its id with the first."""
    return {"name": op.get("name"), "args": op.get("args"), "at": op.get("at"),
            "user": op.get("user")}


def op_answer(op: dict, status: str, result: dict, *, duplicate: bool = False) -> dict:
    """The op's entry in the answer's `results` (SYNC.md)."""
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


def duplicate_by_seq(device, op: dict, batch: Batch) -> dict:
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
    return op_answer(op, record.status, record.result, duplicate=True)



def _clean(text: str) -> str:
    """Text as kept on the op's record: NUL (which PostgreSQL cannot store) replaced."""
    return text.replace("\x00", "\ufffd")


def op_store(device, op: dict, batch: Batch, status: str, *, result: dict | None = None,
             error: DomainError | None = None, at=None, patient=None) -> dict:
    """Record a processed op (its status, result or error) and give its answer."""
    if error is not None:
        result = {"conflict": error.code, "message": error.message} \
            if status == "conflict" else {"error": error.as_dict()}
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
    return op_answer(op, status, result)
