"""After-commit pokes: tell the rooms that care that something changed.

A poke carries a topic, the ids needed to refresh the right partial and a version —
never patient data (a staff message's poke: its uid and whom it is for, in the room of
the tablet that person is signed in on). Pages fetch what changed through the ordinary
(authenticated) views.
"""

import logging
import time
from contextlib import nullcontext
from functools import partial

from ..core.events import DomainEvent, event_prepare_batch
from ..extensions import db, socketio

log = logging.getLogger(__name__)

ROOM_DEVICES = "devices"
# A charge too: an unallocated patient's held charges put it on the pending boards.
PATIENT_EVENTS = {"task.changed", "order.changed", "note.added", "patient.changed",
                  "anaesthesia.changed", "anaesthesia.finalised", "document.queued",
                  "document.ready", "document.failed", "form.changed", "charge.captured",
                  "staff_task.changed"}


def room_board(board_id: int) -> str:
    """The room of one whiteboard's viewers."""
    return f"board:{board_id}"


def room_sheet(patient_uid: str) -> str:
    """The room of one patient's treatment sheet."""
    return f"sheet:{patient_uid}"


def room_device(device_id: int) -> str:
    """The room of one tablet: told when what it carries changes, so it re-caches."""
    return f"device:{device_id}"


def version_now() -> int:
    """A version for pokes: milliseconds since 1970, increasing across processes."""
    return time.time_ns() // 1_000_000


def pokes_for(events: list[DomainEvent], connection=None) -> list[tuple[str | None, dict]]:
    """The (room, poke) pairs one commit's events call for, one poke per room and patient.

    `connection`: the committing transaction's (see pokes_prepare); else one of its own."""
    from ..inbox.selectors import message_tablets
    from ..whiteboards.selectors import boards_showing

    version = version_now()
    patients: dict[str, set[int]] = {}
    whole_boards: set[int] = set()
    devices = synced = maintenance = False
    assigned: set[int] = set()
    messages: list[str] = []
    for evt in events:
        if evt.name in PATIENT_EVENTS and evt.data.get("patient"):  # a task may have none
            wards = patients.setdefault(evt.data["patient"], set())
            if evt.data.get("ward_was"):
                wards.add(evt.data["ward_was"])
        elif evt.name == "board.changed":
            whole_boards.add(evt.data["board"])
        elif evt.name == "settings.changed":  # hours, grace, rotation: every board redraws
            whole_boards.update(_board_ids(connection))
        elif evt.name == "staff_message.sent":
            messages.append(evt.data["message"])
        elif evt.name.startswith("maintenance."):
            maintenance = True  # every screen's banner: times and words only, no patient
        elif evt.name == "device.synced":
            synced = True  # every heartbeat: the dashboard only, never the lists being edited
        elif evt.name.startswith("device."):
            devices = True
            if evt.name == "device.assigned":
                assigned.add(evt.data["device"])
    out = []
    showing = boards_showing(patients, connection=connection) if patients else {}
    for uid in patients:
        out.append((room_sheet(uid), {"topic": "sheet", "patient": uid, "version": version}))
        for board_id in showing[uid]:
            if board_id not in whole_boards:
                out.append((room_board(board_id), {"topic": "board", "board": board_id,
                                                    "patient": uid, "version": version}))
    for board_id in sorted(whole_boards):
        out.append((room_board(board_id), {"topic": "board", "board": board_id,
                                            "version": version}))
    if devices:
        out.append((ROOM_DEVICES, {"topic": "devices", "version": version}))
    if devices or synced:
        out.append((ROOM_DEVICES, {"topic": "sync", "version": version}))
    if maintenance:
        out.append((None, {"topic": "maintenance", "version": version}))
    for device_id in sorted(assigned):
        out.append((room_device(device_id), {"topic": "assignment", "version": version}))
    # A staff message: the tablets its recipients are signed in on, each in its own room,
    # told only which message and for whom; the tablet asks for the words itself.
    for uid, device_id, person in message_tablets(messages, connection=connection):
        out.append((room_device(device_id), {"topic": "inbox", "message": uid, "for": person,
                                             "version": version}))
    return out


def _board_ids(connection=None) -> list[int]:
    """Every board's id, on `connection` (a committing transaction's) or one of its own."""
    from sqlalchemy import select

    from ..whiteboards.models import Board

    with nullcontext(connection) if connection is not None else db.engine.connect() as conn:
        return list(conn.scalars(select(Board.id).order_by(Board.id)))


def pokes_emit(pokes: list[tuple[str | None, dict]]) -> None:
    """Emit pokes worked out by pokes_for (after commit only)."""
    for room, poke in pokes:
        try:
            if room is None:  # every connected screen
                socketio.emit("poke", poke)
            else:
                socketio.emit("poke", poke, to=room)
        except Exception:  # a poke lost is a refresh late, never a change undone
            log.exception("could not send a poke to %s", room)


def pokes_prepare(session, events: list[DomainEvent]):
    """Work out a commit's pokes before it commits, on its own connection; they are sent
    after the commit. Working them out after would need a second pooled connection per
    request, which a crowd of syncing tablets has taken (docs/deployment.md, "Limits")."""
    pokes = pokes_for(events, connection=session.connection())
    return partial(pokes_emit, pokes) if pokes else None


def install() -> None:
    """Poke after every commit that changed something someone is looking at."""
    event_prepare_batch(pokes_prepare)
