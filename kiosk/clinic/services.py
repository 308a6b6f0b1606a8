"""Writes for the clinic: its settings and its wards (each ward with its own board)."""

import os
import re
from pathlib import Path

from sqlalchemy import delete, func, select, update

from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.clock import zone
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import int_optional, text_optional, text_required
from ..extensions import db
from ..patients.models import Patient
from ..whiteboards.models import Board, BoardMember
from ..whiteboards.services import ward_board_ensure
from .models import ClinicSettings, Ward
from .selectors import settings_get

ERR_WARD_TAKEN = "There is already a ward called “{name}”."
ERR_WARD_IN_USE = ("{name} still has {count} admitted patient(s); move or discharge them "
                   "before deleting the ward.")

# Setting → (label, lowest, highest) for the whole-number settings.
SETTING_NUMBERS = {
    "board_hours_back": ("Board hours back", 0, 12),
    "board_hours_ahead": ("Board hours ahead", 1, 24),
    "due_grace_minutes": ("Due grace window (minutes)", 0, 120),
    "board_rotate_seconds": ("Board rotate (seconds)", 5, 300),
    "tablet_lock_minutes": ("Tablet lock (minutes)", 1, 120),
}
ERR_FOLDER = ("{folder} is not a folder this server can write to: give the full path of an "
              "existing folder.")
ERR_EMAIL = "“{address}” is not an e-mail address (separate several with commas)."
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
FLAG_TRUE = ("1", "on", "true", "yes")
WARD_NAME_MAX = 60  # leaves room for the " board" of its board's name (80)


def settings_fields_clean(data: dict) -> dict:
    """Validate the settings present in `data`; return clean values (absent keys left out)."""
    out: dict = {}
    if "name" in data:
        out["name"] = text_required(data.get("name"), "name", "Clinic name", 120)
    if "timezone" in data:
        name = text_required(data.get("timezone"), "timezone", "Time zone", 64)
        out["timezone"] = zone(name).key
    for key, (label, lowest, highest) in SETTING_NUMBERS.items():
        if key in data:
            number = int_optional(data.get(key), key, label, lowest, highest)
            if number is None:
                raise DomainError("required", f"{label} is required.", field=key)
            out[key] = number
    if "allow_direct_patient_creation" in data:
        out["allow_direct_patient_creation"] = _flag(data["allow_direct_patient_creation"])
    out.update(_documents_fields_clean(data))
    return out


def _documents_fields_clean(data: dict) -> dict:
    """Where documents go: a folder that exists and can be written, valid e-mail addresses."""
    out: dict = {}
    if "documents_folder" in data:
        folder = (data.get("documents_folder") or "").strip() or None
        if folder is not None:
            path = Path(folder)
            if not path.is_absolute() or not path.is_dir() or not os.access(path, os.W_OK):
                raise DomainError("bad_folder", ERR_FOLDER.format(folder=folder),
                                  field="documents_folder")
        out["documents_folder"] = folder
    if "documents_email" in data:
        text = (data.get("documents_email") or "").strip()
        addresses = [a.strip() for a in re.split(r"[,;]", text) if a.strip()]
        bad = [a for a in addresses if not EMAIL.match(a)]
        if bad or len(text) > 500:
            raise DomainError("bad_email", ERR_EMAIL.format(address=(bad or [text[:40]])[0]),
                              field="documents_email")
        out["documents_email"] = ", ".join(addresses) or None
    for flag in ("documents_connector", "documents_merge_at_discharge"):
        if flag in data:
            out[flag] = _flag(data[flag])
    return out


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in FLAG_TRUE


def settings_update(*, actor, data: dict) -> ClinicSettings:
    """Change the settings present in `data`, creating the settings row on first save."""
    permission_check(actor, LEVEL_MANAGER, "change the clinic's settings")
    fields = settings_fields_clean(data)
    settings = settings_get()
    if settings.id is None:
        db.session.add(settings)
    before = {key: getattr(settings, key) for key in fields}
    for key, value in fields.items():
        setattr(settings, key, value)
    db.session.flush()
    audit_record(action="settings.update", entity="settings", entity_uid=str(settings.id),
                 user=actor, detail={"before": before, "after": fields})
    # Hours, grace window and rotation change what every screen draws.
    for board_id in db.session.scalars(select(Board.id)):
        event_record(db.session, "board.changed", board=board_id)
    return settings


def _ward_name_free(name: str, own_id: int | None) -> None:
    other = db.session.scalar(select(Ward.id).where(func.lower(Ward.name) == name.lower()))
    if other is not None and other != own_id:
        raise DomainError("ward_taken", ERR_WARD_TAKEN.format(name=name), field="name")


def _ward_fields(name, code) -> tuple[str, str | None]:
    return (text_required(name, "name", "Ward name", WARD_NAME_MAX),
            text_optional(code, "code", "Code", 20))


def ward_create(*, actor, name, code=None) -> Ward:
    """A new ward with a unique name, and its ward board ("<name> board") unless one exists."""
    permission_check(actor, LEVEL_MANAGER, "manage wards")
    name, code = _ward_fields(name, code)
    _ward_name_free(name, None)
    ward = Ward(name=name, code=code)
    db.session.add(ward)
    db.session.flush()
    audit_record(action="ward.create", entity="ward", entity_uid=str(ward.id), user=actor,
                 detail={"name": name, "code": code})
    ward_board_ensure(ward=ward, actor=actor)
    return ward


def ward_update(*, ward: Ward, actor, name, code=None) -> Ward:
    """Rename a ward (names stay unique); its board follows when it still has the old name."""
    permission_check(actor, LEVEL_MANAGER, "manage wards")
    name, code = _ward_fields(name, code)
    _ward_name_free(name, ward.id)
    before = {"name": ward.name, "code": ward.code}
    old_board_name, new_board_name = f"{ward.name} board", f"{name} board"
    ward.name, ward.code = name, code
    boards = list(db.session.scalars(select(Board).where(Board.ward_id == ward.id)))
    name_taken = db.session.scalar(select(Board.id).where(Board.name == new_board_name))
    for board in boards:
        if board.name == old_board_name and name_taken is None:
            board.name = new_board_name
        event_record(db.session, "board.changed", board=board.id)
    db.session.flush()
    audit_record(action="ward.update", entity="ward", entity_uid=str(ward.id), user=actor,
                 detail={"before": before, "after": {"name": name, "code": code}})
    return ward


def ward_delete(*, ward: Ward, actor) -> None:
    """Delete a ward with no admitted patients, and its ward boards.

    Discharged patients keep their record but no longer name the ward.
    """
    permission_check(actor, LEVEL_MANAGER, "manage wards")
    admitted = db.session.scalar(select(func.count(Patient.id)).where(
        Patient.ward_id == ward.id, Patient.status == "admitted"))
    if admitted:
        raise DomainError("ward_in_use", ERR_WARD_IN_USE.format(name=ward.name, count=admitted))
    db.session.execute(update(Patient).where(Patient.ward_id == ward.id).values(ward_id=None))
    board_ids = list(db.session.scalars(select(Board.id).where(Board.ward_id == ward.id)))
    if board_ids:
        db.session.execute(delete(BoardMember).where(BoardMember.board_id.in_(board_ids)))
        db.session.execute(delete(Board).where(Board.id.in_(board_ids)))
    for board_id in board_ids:
        event_record(db.session, "board.changed", board=board_id)
    audit_record(action="ward.delete", entity="ward", entity_uid=str(ward.id), user=actor,
                 detail={"name": ward.name, "boards": board_ids})
    db.session.delete(ward)
    db.session.flush()
