"""Writes for devices: provisioning with a token that is stored only as a hash."""

import hashlib
import secrets

from sqlalchemy import select

from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.clock import utcnow
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import choice, int_optional, text_required
from ..extensions import db
from ..whiteboards.models import Board
from .models import Device

ERR_NO_BOARD = "Choose the board this display shows."
ERR_ALREADY_REVOKED = "This device was already revoked."
ERR_DISPLAY_LINK = "That display link is not valid, or the display was revoked; ask a manager."

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "black", "white")
KINDS = ("tablet", "display")


def token_hash(token: str) -> str:
    """The stored form of a device token (SHA-256; tokens are long and random)."""
    return hashlib.sha256(token.encode()).hexdigest()


def device_provision(*, name, colour, number=None, kind="tablet", actor=None
                     ) -> tuple[Device, str]:
    """A new device and its bearer token; the token is returned once and never stored."""
    device = Device(name=text_required(name, "name", "Name", 80),
                    colour=choice((colour or "").strip().lower(), "colour", "Colour", COLOURS),
                    number=int_optional(number, "number", "Number", 1, 999),
                    kind=choice(kind, "kind", "Kind", KINDS))
    token = secrets.token_urlsafe(32)
    device.token_hash = token_hash(token)
    db.session.add(device)
    db.session.flush()
    audit_record(action="device.provision", entity="device", entity_uid=device.public_id,
                 user=actor, detail={"name": device.name, "colour": device.colour})
    return device, token


def display_create(*, actor, name, board_id, colour="black") -> tuple[Device, str]:
    """A wall display for one board; its token (shown once) is read-only for that board."""
    permission_check(actor, LEVEL_MANAGER, "add wall displays")
    board = db.session.get(Board, board_id) if str(board_id or "").isdigit() else None
    if board is None:
        raise DomainError("no_board", ERR_NO_BOARD, field="board")
    device, token = device_provision(name=name, colour=colour, kind="display", actor=actor)
    device.board_id = board.id
    event_record(db.session, "device.changed", device=device.id)
    return device, token


def device_revoke(*, actor, device: Device, operator: bool = False) -> Device:
    """Revoke a device: its token stops working and its live connections are closed.

    `operator`: asked on the server's own command line (no staff member signed in).
    """
    if not operator:
        permission_check(actor, LEVEL_MANAGER, "revoke devices")
    if device.revoked_at is not None:
        raise DomainError("already_revoked", ERR_ALREADY_REVOKED)
    device.revoked_at = utcnow()
    audit_record(action="device.revoke", entity="device", entity_uid=device.public_id,
                 user=actor)
    event_record(db.session, "device.revoked", device=device.id)
    event_record(db.session, "device.changed", device=device.id)
    return device


def device_by_token(token) -> Device | None:
    """The active device holding this token, or None (the token is compared by its hash)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        return None
    device = db.session.scalar(select(Device).where(Device.token_hash == token_hash(token)))
    return device if device is not None and device.is_active else None
