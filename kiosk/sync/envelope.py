"""A sync request's envelope (SYNC.md): the body's shape, the batch it asks for, the
outbox's report and the client's extras, checked before anything is applied."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..core import clock
from ..core.errors import DomainError, error_body
from ..core.validate import INT_MAX, timestamp
from .compat import op_current
from .rows import BatchRows

MAX_OPS = 500
MAX_BYTES = 2 * 1024 * 1024


class SyncRefused(Exception):
    """The whole request is refused (HTTP status and a JSON body); nothing was applied."""

    def __init__(self, status: int, error: str, message: str, **extra):
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra

    @property
    def body(self) -> dict:
        """The JSON body of the refusal (core.errors.error_body)."""
        return error_body(self.error, self.message, **self.extra)


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


def device_time(value, name: str) -> datetime:
    """A time by the device's clock (`sent_at`, an op's `at`): a timestamp with its zone (Z or
    an offset), however far that clock is off (the skew corrects it); else DomainError
    `bad_time` naming it. The one timestamp parser (core.validate), unbounded."""
    try:
        return timestamp(value, name, f"“{name}”", required=True, bounded=False)
    except DomainError as exc:
        raise DomainError("bad_time", exc.message, field=name) from None


def _device_time_or_none(value) -> datetime | None:
    try:
        return device_time(value, "oldest_at")
    except DomainError:
        return None  # an outbox report is never a reason to refuse a heartbeat


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
    try:
        sent_at = device_time(body.get("sent_at"), "sent_at")
    except DomainError:
        raise SyncRefused(400, "bad_request", "“sent_at” must be a timestamp like "
                          "2026-11-22T10:20:00Z.") from None
    for index, op in enumerate(ops):
        seq = op.get("seq") if isinstance(op, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise SyncRefused(400, "bad_request", f"Op {index} has no valid “seq” (a whole "
                              "number from 1); nothing was applied.", index=index)
        if index and seq <= ops[index - 1]["seq"]:
            raise SyncRefused(400, "bad_request", "Ops must be in increasing seq order; "
                              "nothing was applied.", index=index)
    # An older page's op is read as today's from here on: checked, applied, stored and
    # compared with its resend in today's shape (compat.py).
    ops = [op_current(op) for op in ops]
    outbox = body.get("outbox") if isinstance(body.get("outbox"), dict) else {}
    pending = outbox.get("pending")
    if not isinstance(pending, int) or isinstance(pending, bool) or pending < 0:
        pending = None
    return Batch(ops=ops, sent_at=sent_at, received_at=received_at,
                 pending=None if pending is None else min(pending, INT_MAX),
                 oldest_at=_device_time_or_none(outbox.get("oldest_at")),
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


def utcnow_ms() -> str:
    """The server's time as 2026-11-22T10:20:00.412Z."""
    now = clock.utcnow_exact()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
