"""Writes for whiteboards: create, rename, reorder and delete boards; list-board members."""

from sqlalchemy import delete, func, select

from ..core.audit import audit_record
from ..core.auth import LEVEL_ORDERS, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import choice, int_optional, text_required
from ..extensions import db
from ..patients.services import ward_resolve
from .models import BOARD_FILTERS, BOARD_KINDS, Board, BoardMember

# Levels 4–5 may make whiteboards (DOMAIN.md); the admin pages ask for more.
LEVEL_BOARDS = LEVEL_ORDERS
POSITION_MAX = 999

ERR_BOARD_TAKEN = "There is already a board called “{name}”."
ERR_WARD_NEEDED = "Choose the ward this board shows."
ERR_WARD_ON_LIST = "A hand-made list board does not show a ward; leave the ward empty."
ERR_NOT_LIST = "{board} shows its ward's patients; add patients to a list board instead."
ERR_PATIENT_NEEDED = "Choose a patient."
ERR_DISCHARGED = "{name} has been discharged; only admitted patients can go on a board."
ERR_ALREADY_ON = "{name} is already on {board}."
ERR_NOT_ON = "{name} is not on {board}."


def _name_free(name: str, own_id: int | None) -> None:
    other = db.session.scalar(select(Board.id).where(func.lower(Board.name) == name.lower()))
    if other is not None and other != own_id:
        raise DomainError("board_taken", ERR_BOARD_TAKEN.format(name=name), field="name")


def _position(value, default: int | None) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return int_optional(value, "position", "Position", 0, POSITION_MAX)


def _changed(board: Board) -> None:
    event_record(db.session, "board.changed", board=board.id)


def board_create(*, actor, name, kind, ward=None, position=None, filter=None) -> Board:  # noqa: A002
    """A new board: kind 'ward' shows the chosen ward, 'list' shows the patients put on it,
    'pending' those with something unfinished; filter 'pending' narrows any board so."""
    permission_check(actor, LEVEL_BOARDS, "manage whiteboards")
    name = text_required(name, "name", "Board name", 80)
    kind = choice(kind, "kind", "Kind", BOARD_KINDS)
    ward = ward_resolve(ward)
    if kind == "ward" and ward is None:
        raise DomainError("required", ERR_WARD_NEEDED, field="ward")
    if kind == "list" and ward is not None:
        raise DomainError("ward_on_list", ERR_WARD_ON_LIST, field="ward")
    filter = choice(filter, "filter", "Filter", BOARD_FILTERS) if filter else None
    next_position = (db.session.scalar(select(func.max(Board.position))) or 0) + 1
    position = _position(position, min(next_position, POSITION_MAX))
    _name_free(name, None)
    board = Board(name=name, kind=kind, ward=ward, position=position, filter=filter)
    db.session.add(board)
    db.session.flush()
    audit_record(action="board.create", entity="board", entity_uid=str(board.id), user=actor,
                 detail={"name": name, "kind": kind, "ward": ward.id if ward else None})
    _changed(board)
    return board


def ward_board_ensure(*, ward, actor) -> Board | None:
    """The ward's board "<ward> board", created unless the ward or that name has one already."""
    permission_check(actor, LEVEL_BOARDS, "manage whiteboards")
    name = f"{ward.name} board"
    existing = db.session.scalar(select(Board).where(Board.kind == "ward",
                                                     Board.ward_id == ward.id).limit(1))
    if existing is not None:
        return existing
    if db.session.scalar(select(Board.id).where(func.lower(Board.name) == name.lower())):
        return None
    return board_create(actor=actor, name=name, kind="ward", ward=ward)


def board_update(*, board: Board, actor, name, position=None) -> Board:
    """Rename a board and set its place in the list (lower positions come first)."""
    permission_check(actor, LEVEL_BOARDS, "manage whiteboards")
    name = text_required(name, "name", "Board name", 80)
    position = _position(position, board.position)
    _name_free(name, board.id)
    before = {"name": board.name, "position": board.position}
    board.name, board.position = name, position
    db.session.flush()
    audit_record(action="board.update", entity="board", entity_uid=str(board.id), user=actor,
                 detail={"before": before, "after": {"name": name, "position": position}})
    _changed(board)
    return board


def board_delete(*, board: Board, actor) -> None:
    """Delete a board and its hand-made membership; the patients themselves are untouched."""
    permission_check(actor, LEVEL_BOARDS, "manage whiteboards")
    db.session.execute(delete(BoardMember).where(BoardMember.board_id == board.id))
    audit_record(action="board.delete", entity="board", entity_uid=str(board.id), user=actor,
                 detail={"name": board.name, "kind": board.kind})
    _changed(board)
    db.session.delete(board)
    db.session.flush()


def _membership(board: Board, patient) -> BoardMember | None:
    return db.session.scalar(select(BoardMember).where(BoardMember.board_id == board.id,
                                                       BoardMember.patient_id == patient.id))


def board_member_add(*, board: Board, actor, patient) -> BoardMember:
    """Put an admitted patient on a list board (once)."""
    permission_check(actor, LEVEL_BOARDS, "put patients on whiteboards")
    if board.kind != "list":
        raise DomainError("not_a_list", ERR_NOT_LIST.format(board=board.name), field="patient")
    if patient is None:
        raise DomainError("required", ERR_PATIENT_NEEDED, field="patient")
    if patient.status != "admitted":
        raise DomainError("discharged", ERR_DISCHARGED.format(name=patient.name),
                          field="patient")
    if _membership(board, patient) is not None:
        raise DomainError("already_on_board",
                          ERR_ALREADY_ON.format(name=patient.name, board=board.name),
                          field="patient")
    member = BoardMember(board_id=board.id, patient_id=patient.id)
    db.session.add(member)
    db.session.flush()
    audit_record(action="board.member_add", entity="board", entity_uid=str(board.id),
                 user=actor, detail={"patient": patient.uid, "name": patient.name})
    _changed(board)
    return member


def board_member_remove(*, board: Board, actor, patient) -> None:
    """Take a patient off a list board."""
    permission_check(actor, LEVEL_BOARDS, "take patients off whiteboards")
    member = _membership(board, patient)
    if member is None:
        raise DomainError("not_on_board", ERR_NOT_ON.format(name=patient.name, board=board.name),
                          field="patient")
    db.session.delete(member)
    db.session.flush()
    audit_record(action="board.member_remove", entity="board", entity_uid=str(board.id),
                 user=actor, detail={"patient": patient.uid, "name": patient.name})
    _changed(board)
