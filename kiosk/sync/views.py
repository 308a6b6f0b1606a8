"""The sync endpoint and the reads tablets and integrations use (JSON, SYNC.md)."""

import json
import logging
import re

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import IntegrityError, OperationalError

from ..core import clock
from ..core.errorpages import json_error
from ..devices.auth import api_caller, device_from_request
from ..extensions import csrf, db
from .envelope import MAX_BYTES, SyncRefused, batch_read
from .execution import TransientFailure, sync_process
from .heartbeat import sync_heartbeat
from .selectors import device_info, patients_json, tasks_json
from .turns import busy_retry_after, device_lock, write_turn

log = logging.getLogger(__name__)
bp = Blueprint("sync", __name__, url_prefix="/api")
RETRY_AFTER_S = "5"
# JSON can spell half of a UTF-16 pair (\ud800) that no database can store; only a body
# with such an escape needs the full check.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _is_unicode(body) -> bool:
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@bp.post("/sync")
@csrf.exempt  # a bearer token, not a cookie, authenticates this endpoint
def sync():
    """Take a device's ops in seq order; answer per op (SYNC.md)."""
    if (request.content_length or 0) > MAX_BYTES:
        return json_error(413, "too_large", "At most 2 MiB per request; send fewer ops at a time.")
    device = device_from_request("tablet")
    if device is None:
        return json_error(401, "unauthorized", "A valid, unrevoked tablet token is required; "
                          "ask a manager.")
    # The token was checked on a pooled connection: give it back before queuing for the
    # turn to write, or the requests ahead in the queue wait for it (docs/deployment.md).
    # The device is read again, locked, once the turn comes.
    device_id = device.id
    db.session.rollback()
    received_at = clock.utcnow()
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BYTES:
        return json_error(413, "too_large", "At most 2 MiB per request; send fewer ops at a time.")
    try:
        body = json.loads(raw.decode("utf-8"))  # strict: no encoded surrogates either
    except (ValueError, UnicodeDecodeError, RecursionError):
        return json_error(400, "bad_json", "The body is not valid JSON; nothing was applied.")
    if SURROGATE_ESCAPE.search(raw) and not _is_unicode(body):
        return json_error(400, "bad_json", "The body holds text that is not valid Unicode (a lone "
                          "surrogate escape); nothing was applied.")
    with write_turn() as granted:
        if not granted:  # a crowd is ahead: come back rather than hang (SYNC.md's busy)
            return _busy(busy_retry_after())
        try:
            device = device_lock(device_id)
            if device is None or not device.is_active:  # revoked while it waited its turn
                raise SyncRefused(401, "unauthorized", "A valid, unrevoked device token is "
                                  "required; ask a manager.")
            batch = batch_read(body, device=device, received_at=received_at)
            sync_heartbeat(device=device, batch=batch)
            answer = sync_process(device=device, batch=batch)
            db.session.commit()
            return jsonify(answer)
        except SyncRefused as refused:
            if refused.status == 409:
                db.session.commit()  # the ops before the gap, the gap on the device's history
            else:
                db.session.rollback()
            return json_error(refused.status, refused.error, refused.message, **refused.extra)
        except (TransientFailure, OperationalError, IntegrityError) as exc:
            # IntegrityError: another request of the same device won the race for these seqs.
            return _transient(exc)
        finally:
            # Any other failure: the transaction ends here, before the next request's turn.
            if db.session().in_transaction():
                db.session.rollback()


def _busy(retry_after: int):
    response, status = json_error(503, "unavailable", "The server is busy with other tablets' "
                                  "syncs; nothing was applied. Try again.")
    response.headers["Retry-After"] = str(retry_after)
    return response, status


def _transient(exc):
    log.warning("sync stopped by a database failure: %s", exc)
    try:  # keep the ops processed before the failure (the failed one's savepoint is undone)
        db.session.commit()
    except Exception:  # the database is gone altogether: the resend will redo them
        db.session.rollback()
    response, status = json_error(503, "unavailable", "The database is busy or down; try again.")
    response.headers["Retry-After"] = RETRY_AFTER_S
    return response, status


def _caller_or_401():
    kind, who = api_caller()
    if kind is None:
        return None
    return kind, who


@bp.get("/patients")
def patients():
    """Patients (admitted by default; ?status=discharged or all)."""
    if _caller_or_401() is None:
        return json_error(401, "unauthorized", "Sign in, or send a tablet token.")
    status = request.args.get("status", "admitted")
    if status not in ("admitted", "discharged", "all"):
        return json_error(400, "bad_request", "status must be admitted, discharged or all.")
    return jsonify(patients_json(status=None if status == "all" else status))


@bp.get("/patients/<uid>/tasks")
def patient_tasks(uid: str):
    """A patient's tasks, by due time."""
    if _caller_or_401() is None:
        return json_error(401, "unauthorized", "Sign in, or send a tablet token.")
    tasks = tasks_json(uid)
    if tasks is None:
        return json_error(404, "not_found", "There is no patient with that id.")
    return jsonify(tasks)


@bp.get("/devices/<device_id>")
def device(device_id: str):
    """A device's sync state: a device may read itself; signed-in staff any device."""
    kind, who = _caller_or_401() or (None, None)
    if kind is None:
        return json_error(401, "unauthorized", "Sign in, or send a tablet token.")
    if kind == "device" and who.public_id != device_id:
        return json_error(403, "forbidden", "A device may read only itself.")
    info = device_info(device_id)
    if info is None:
        return json_error(404, "not_found", "There is no device with that id.")
    return jsonify(info)

