"""Writes for devices: pairing and provisioning (tokens and codes stored only as hashes),
renaming, revoking, which ward or patients a tablet carries, and reviewing its sync
problems."""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select

from ..clinic.models import Ward
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, LEVEL_ORDERS, permission_check
from ..core.errors import DomainError, NotFound
from ..core.events import event_record
from ..core.validate import choice, int_optional, text_required
from ..extensions import db
from ..patients.models import Patient
from ..whiteboards.models import Board
from .models import Device, DevicePatient, SyncOp
from .palette import COLOURS

ERR_NO_BOARD = "Choose the board this display shows."
ERR_ALREADY_REVOKED = "This device was already revoked."
ERR_DISPLAY_LINK = "That display link is not valid, or the display was revoked; ask a manager."

KINDS = ("tablet", "display")

PAIRING_MINUTES = 10
# No 0/O, 1/I: a code is read off a screen and typed on a tablet.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8

ERR_CODE_FORMAT = "A pairing code is 8 letters and digits, like K7PM-4QXD."
ERR_CODE_WRONG = ("That pairing code is not right. Check it, or ask a manager for a new "
                  "one.")
ERR_CODE_EXPIRED = (f"That pairing code has expired (codes last {PAIRING_MINUTES} minutes). "
                    "Ask a manager for a new one.")
ERR_CODE_USED = "That pairing code was used already. Ask a manager for a new one."
ERR_REVOKED = "{label} is revoked: pair it again before giving it patients."
ERR_DISPLAY_CARRIES = "{label} is a wall display: it shows a board and carries no patients."
ERR_DISCHARGED = "{name} is discharged: only admitted patients can be given to a tablet."
ERR_NO_WARD = "There is no such ward."
ERR_HOLDS_CHANGES = ("This browser still holds {count} unsent changes of {holding}: let them "
                     "sync (or ask a manager) before pairing it as {label}. The code still "
                     "works.")


def token_hash(token: str) -> str:
    """The stored form of a device token (SHA-256; tokens are long and random)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _device_fields(*, name, colour, number, kind) -> dict:
    """A device's name, colour, number and kind, checked (DomainError naming the field)."""
    return {"name": text_required(name, "name", "Name", 80),
            "colour": choice((colour or "").strip().lower(), "colour", "Colour", COLOURS),
            "number": int_optional(number, "number", "Number", 1, 999),
            "kind": choice(kind, "kind", "Kind", KINDS)}


def _board_for(kind: str, board_id) -> Board | None:
    """A display's board (required); tablets have none."""
    if kind != "display":
        return None
    board = db.session.get(Board, int(board_id)) if str(board_id or "").isdigit() else None
    if board is None:
        raise DomainError("no_board", ERR_NO_BOARD, field="board")
    return board


def device_provision(*, name, colour, number=None, kind="tablet", actor=None
                     ) -> tuple[Device, str]:
    """A new device and its bearer token; the token is returned once and never stored."""
    device = Device(**_device_fields(name=name, colour=colour, number=number, kind=kind))
    token = secrets.token_urlsafe(32)
    device.token_hash = token_hash(token)
    device.paired_at = clock.utcnow()
    db.session.add(device)
    db.session.flush()
    audit_record(action="device.provision", entity="device", entity_uid=device.public_id,
                 user=actor, detail={"name": device.name, "colour": device.colour})
    return device, token


def code_normalise(text) -> str | None:
    """A typed code as stored (upper case, no spaces or dashes), or None if it cannot be one."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def code_display(code: str) -> str:
    """A code as shown to people: K7PM-4QXD."""
    return f"{code[:4]}-{code[4:]}"


def _pairing_code_new(device: Device) -> str:
    """Give the device a fresh one-time code (any earlier code stops working)."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    device.pairing_code_hash = token_hash(code)
    device.pairing_expires_at = clock.utcnow() + timedelta(minutes=PAIRING_MINUTES)
    device.pairing_used_at = None
    return code


def device_add(*, actor, name, colour, number=None, kind="tablet", board_id=None
               ) -> tuple[Device, str]:
    """A device added on screen and its one-time pairing code; the token comes at pairing."""
    permission_check(actor, LEVEL_MANAGER, "add devices")
    fields = _device_fields(name=name, colour=colour, number=number, kind=kind)
    board = _board_for(fields["kind"], board_id)
    device = Device(**fields, board_id=board.id if board else None)
    db.session.add(device)
    db.session.flush()
    code = _pairing_code_new(device)
    audit_record(action="device.add", entity="device", entity_uid=device.public_id,
                 user=actor, detail=fields)
    event_record(db.session, "device.changed", device=device.id)
    return device, code


def device_pairing_start(*, actor, device: Device, operator: bool = False) -> str:
    """A new one-time pairing code for a device (a new tablet, or one that lost its token).

    The device's current token keeps working until the code is used.
    """
    if not operator:
        permission_check(actor, LEVEL_MANAGER, "pair devices")
    code = _pairing_code_new(device)
    audit_record(action="device.pairing_code", entity="device", entity_uid=device.public_id,
                 user=actor)
    return code


def device_pair(*, code, holding=None, holding_pending: int = 0) -> tuple[Device, str]:
    """Exchange a pairing code for the device's new token (once, within its 10 minutes).

    Pairing a revoked device brings it back with the new token; the old token stops.
    `holding`: the device id the browser is now, with `holding_pending` unsent changes; a
    browser is never paired as another device over changes it has not sent.
    """
    normal = code_normalise(code)
    if normal is None:
        raise DomainError("bad_code", ERR_CODE_FORMAT, field="code")
    device = db.session.scalar(select(Device).where(Device.pairing_code_hash == token_hash(normal)))
    if device is None:
        raise DomainError("wrong_code", ERR_CODE_WRONG, field="code")
    now = clock.utcnow()
    if device.pairing_used_at is not None:
        raise DomainError("used_code", ERR_CODE_USED, field="code")
    if device.pairing_expires_at is None or device.pairing_expires_at <= now:
        raise DomainError("expired_code", ERR_CODE_EXPIRED, field="code")
    if holding and holding != device.public_id and holding_pending > 0:
        raise DomainError("holds_changes", ERR_HOLDS_CHANGES.format(
            count=holding_pending, holding=str(holding)[:12], label=device.label), field="code")
    token = secrets.token_urlsafe(32)
    if device.token_hash is not None:  # paired before: its earlier sessions end
        device.session_generation = (device.session_generation or 0) + 1
        event_record(db.session, "session.ended", device=device.id)
    device.token_hash = token_hash(token)
    device.pairing_used_at = now
    device.paired_at = now
    device.revoked_at = None
    audit_record(action="device.pair", entity="device", entity_uid=device.public_id,
                 device=device)
    event_record(db.session, "device.changed", device=device.id)
    return device, token


def device_update(*, actor, device: Device, name, colour, number=None, board_id=None) -> Device:
    """Rename or re-colour a device (or change a display's board); its kind stays."""
    permission_check(actor, LEVEL_MANAGER, "change devices")
    fields = _device_fields(name=name, colour=colour, number=number, kind=device.kind)
    board = _board_for(device.kind, board_id)
    before = {"name": device.name, "colour": device.colour, "number": device.number}
    device.name, device.colour, device.number = fields["name"], fields["colour"], fields["number"]
    if board is not None:
        device.board_id = board.id
    audit_record(action="device.update", entity="device", entity_uid=device.public_id,
                 user=actor, detail={"before": before, "after": {
                     "name": device.name, "colour": device.colour, "number": device.number}})
    event_record(db.session, "device.changed", device=device.id)
    return device


def _carrier_check(device: Device) -> None:
    """Only an active tablet carries patients."""
    if device.revoked_at is not None:
        raise DomainError("device_revoked", ERR_REVOKED.format(label=device.label),
                          field="device")
    if device.kind != "tablet":
        raise DomainError("not_a_tablet", ERR_DISPLAY_CARRIES.format(label=device.label),
                          field="device")


def device_assign_ward(*, actor, device: Device, ward_id) -> Device:
    """Give a tablet a ward's admitted patients (None or '' takes the ward away)."""
    permission_check(actor, LEVEL_MANAGER, "assign devices")
    _carrier_check(device)
    ward = None
    if ward_id not in (None, ""):
        ward = db.session.get(Ward, int(ward_id)) if str(ward_id).isdigit() else None
        if ward is None:
            raise DomainError("no_ward", ERR_NO_WARD, field="ward")
    before = device.ward.name if device.ward else None
    device.ward_id = ward.id if ward else None
    device.ward = ward
    audit_record(action="device.assign_ward", entity="device", entity_uid=device.public_id,
                 user=actor, detail={"before": before, "after": ward.name if ward else None})
    event_record(db.session, "device.assigned", device=device.id)
    return device


def device_patient_assign(*, actor, device: Device, patient: Patient) -> DevicePatient:
    """Give a tablet one admitted patient (besides its ward's); giving it twice changes nothing."""
    permission_check(actor, LEVEL_MANAGER, "assign devices")
    _carrier_check(device)
    if patient.status != "admitted":
        raise DomainError("discharged", ERR_DISCHARGED.format(name=patient.name),
                          field="patient")
    link = db.session.scalar(select(DevicePatient).where(
        DevicePatient.device_id == device.id, DevicePatient.patient_id == patient.id))
    if link is not None:
        return link
    link = DevicePatient(device_id=device.id, patient_id=patient.id)
    db.session.add(link)
    db.session.flush()
    audit_record(action="device.assign_patient", entity="device",
                 entity_uid=device.public_id, user=actor, detail={"patient": patient.uid})
    event_record(db.session, "device.assigned", device=device.id)
    event_record(db.session, "patient.changed", patient=patient.uid)
    return link


def device_patient_unassign(*, actor, device: Device, patient: Patient) -> None:
    """Take one patient off a tablet (its ward's patients stay)."""
    permission_check(actor, LEVEL_MANAGER, "assign devices")
    link = db.session.scalar(select(DevicePatient).where(
        DevicePatient.device_id == device.id, DevicePatient.patient_id == patient.id))
    if link is None:
        return
    db.session.delete(link)
    audit_record(action="device.unassign_patient", entity="device",
                 entity_uid=device.public_id, user=actor, detail={"patient": patient.uid})
    event_record(db.session, "device.assigned", device=device.id)
    event_record(db.session, "patient.changed", patient=patient.uid)


def display_create(*, actor, name, board_id, colour="black") -> tuple[Device, str]:
    """A wall display for one board; its token (shown once) is read-only for that board."""
    permission_check(actor, LEVEL_MANAGER, "add wall displays")
    board = _board_for("display", board_id)
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
    device.revoked_at = clock.utcnow()
    device.pairing_code_hash = None  # a code handed out before cannot bring it back
    # Its sessions end for good: pairing it again does not bring back a copied cookie.
    device.session_generation = (device.session_generation or 0) + 1
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


def sync_op_dismiss(*, actor, device, op_id: int) -> SyncOp:
    """Mark a device's conflict or refused op as reviewed (it stays in the history)."""
    permission_check(actor, LEVEL_ORDERS, "dismiss sync problems")
    record = db.session.get(SyncOp, op_id)
    if record is None or record.device_id != device.id:
        raise NotFound("There is no such op on this device.")
    if record.dismissed_at is None:
        record.dismissed_at = clock.utcnow()
        audit_record(action="sync.dismiss", entity="device", entity_uid=device.public_id,
                     user=actor, detail={"seq": record.seq, "op": record.op_id})
        event_record(db.session, "device.changed", device=device.id)
        if record.name == "patient.discharge" and record.patient_uid:
            event_record(db.session, "patient.changed", patient=record.patient_uid)
    return record
