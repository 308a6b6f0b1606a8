"""Socket.IO connections: who may connect, which rooms they may join, and revocation.

Three kinds of client: a signed-in user (session cookie), a tablet (its device token in
the connect `auth`), and a wall display (its display session, or its token), which is
read-only and may listen to its own board's room only. Anything else is refused.
"""

import logging
import re
import threading
from dataclasses import dataclass

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, join_room, leave_room
from sqlalchemy import select

from ..extensions import db, socketio
from .pokes import ROOM_DEVICES, room_board, room_device

log = logging.getLogger(__name__)

ROOM_RE = re.compile(r"^(board:\d{1,9}|sheet:[0-9a-f-]{36}|devices|device:\d{1,9})$")
MAX_ROOMS = 50
SWEEP_SECONDS = 5


@dataclass(frozen=True)
class Principal:
    """Who is on the other end of a connection."""

    kind: str  # "user", "device" or "display"
    id: int
    board_id: int | None = None
    tablet_id: int | None = None  # the tablet this connection comes from, if any
    # What ends the connection besides revocation: a user's sign-in (its row id), or the
    # device's session generation (re-pairing moves it on).
    session_id: int | None = None
    generation: int | None = None

    def may_join(self, room: str) -> bool:
        """Displays hear only their board; users and tablets hear any board or sheet;
        a tablet's own room (what it carries changed) is for that tablet only."""
        if self.kind == "display":
            return self.board_id is not None and room == room_board(self.board_id)
        if room.startswith("device:"):
            return self.tablet_id is not None and room == room_device(self.tablet_id)
        return room != ROOM_DEVICES or self.kind == "user"


# Connections of this process: sid -> principal (revocation is checked against these).
_clients: dict[str, Principal] = {}
_clients_lock = threading.Lock()


def principal_from(auth) -> Principal | None:
    """The principal of a connecting client, from its session or its token, or None."""
    from ..core.auth import current_display, current_sign_in, current_user
    from ..devices.auth import device_by_credential

    token = auth.get("token") if isinstance(auth, dict) else None
    device = device_by_credential(token, ("tablet", "display"))
    tablet_id = device.id if device is not None and device.kind == "tablet" else None
    user = current_user()
    if user is not None:
        return Principal("user", user.id, tablet_id=tablet_id,
                         session_id=current_sign_in().id)
    display = current_display()
    if display is not None:
        return Principal("display", display.id, display.board_id,
                         generation=display.session_generation)
    if device is None:
        return None
    if device.kind == "display":
        return Principal("display", device.id, device.board_id,
                         generation=device.session_generation)
    return Principal("device", device.id, tablet_id=device.id,
                     generation=device.session_generation)


def on_connect(auth=None):
    """Refuse anyone unknown; a display joins its own board's room at once."""
    principal = principal_from(auth)
    if principal is None:
        log.info("live connection refused from %s", request.remote_addr)
        raise ConnectionRefusedError("unauthorized")
    with _clients_lock:
        _clients[request.sid] = principal
    if principal.kind == "display":
        join_room(room_board(principal.board_id))
    return True


def on_join(data=None):
    """Join the rooms asked for that this client may hear; answer which were joined."""
    principal = _clients.get(request.sid)
    rooms = data.get("rooms") if isinstance(data, dict) else None
    if principal is None or not isinstance(rooms, list) or len(rooms) > MAX_ROOMS:
        log.warning("ignored a malformed join from %s", request.sid)
        return {"joined": [], "refused": [], "error": "malformed"}
    joined, refused = [], []
    for room in rooms:
        if isinstance(room, str) and ROOM_RE.match(room) and principal.may_join(room):
            join_room(room)
            joined.append(room)
        else:
            refused.append(room if isinstance(room, str) else repr(room)[:40])
    if refused:
        log.warning("refused rooms %s to %s %s", refused[:5], principal.kind, principal.id)
    return {"joined": joined, "refused": refused}


def on_leave(data=None):
    """Leave rooms (a page showing something else now)."""
    rooms = data.get("rooms") if isinstance(data, dict) else None
    if isinstance(rooms, list):
        for room in rooms[:MAX_ROOMS]:
            if isinstance(room, str) and ROOM_RE.match(room):
                leave_room(room)
    return {"ok": True}


def on_disconnect(*args):
    """Forget the connection."""
    with _clients_lock:
        _clients.pop(request.sid, None)


def on_error(exc):
    """A client event that failed is logged and ignored; the connection survives."""
    log.warning("live event from %s failed: %s", getattr(request, "sid", "?"), exc)


def _dead(clients: dict[str, Principal]) -> set[str]:
    """The connections whose device was revoked or re-paired, whose user was deactivated,
    or whose sign-in ended (signed out, a new password or PIN, too old)."""
    from ..devices.models import Device
    from ..staff.models import User
    from ..staff.sessions import staff_sessions_dead

    devices = {p.id for p in clients.values() if p.kind in ("device", "display")}
    users = {p.id for p in clients.values() if p.kind == "user"}
    generations = dict(db.session.execute(select(Device.id, Device.session_generation).where(
        Device.id.in_(devices), Device.revoked_at.is_(None))).all()) if devices else {}
    dead_users = set(db.session.scalars(select(User.id).where(
        User.id.in_(users), User.active.is_(False)))) if users else set()
    dead_sessions = staff_sessions_dead(p.session_id for p in clients.values()
                                        if p.session_id is not None)
    dead = set()
    for sid, p in clients.items():
        if p.kind == "user":
            gone = p.id in dead_users or p.session_id in dead_sessions
        else:
            gone = generations.get(p.id) != p.generation
        if gone:
            dead.add(sid)
    return dead


def disconnect_revoked(app) -> int:
    """Close this process's connections whose device was revoked or re-paired, whose user
    was deactivated, or whose sign-in ended."""
    with _clients_lock:
        clients = dict(_clients)
    with app.app_context():
        dead = _dead(clients)
        db.session.remove()
    for sid in dead:
        socketio.server.disconnect(sid, namespace="/")
        with _clients_lock:
            _clients.pop(sid, None)
    if dead:
        log.info("closed %d live connections of ended sessions, revoked devices or inactive "
                 "users", len(dead))
    return len(dead)


def _sweep_loop(app) -> None:
    while True:
        socketio.sleep(SWEEP_SECONDS)
        try:
            disconnect_revoked(app)
        except Exception:
            log.exception("revocation sweep failed")


def _on_revoked(evt) -> None:
    disconnect_revoked(current_app._get_current_object())


def install() -> None:
    """Register the handlers on the current Socket.IO server (each create_app makes one).
    Revocation closes connections in this process at once, and in the others within a
    few seconds (each process sweeps its own)."""
    from ..core.events import event_subscribe

    event_subscribe("device.revoked", _on_revoked)
    event_subscribe("session.ended", _on_revoked)  # signed out, new password, re-paired
    socketio.on_event("connect", on_connect)
    socketio.on_event("join", on_join)
    socketio.on_event("leave", on_leave)
    socketio.on_event("disconnect", on_disconnect)
    socketio.on_error_default(on_error)


def start_sweep(app) -> None:
    """Start this process's revocation sweep (servers call it once, tests need not)."""
    socketio.start_background_task(_sweep_loop, app)
