"""Writes for wards: a ward and its ward board are made, renamed and deleted together,
and a ward with admitted patients is never deleted."""

from sqlalchemy import delete, func, select, update

from ..clinic.models import Ward
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import text_optional, text_required
from ..extensions import db
from ..patients.models import Patient
from .models import Board, BoardMember
from .services import ward_board_ensure

ERR_WARD_TAKEN = "There is already a ward called “{name}”."
ERR_WARD_IN_USE = ("{name} still has {count} admitted patient(s); move or discharge them "
                   "before deleting the ward.")
WARD_NAME_MAX = 60  # leaves room for the " board" of its board's name (80)


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
