"""Boards and list-board membership: the services, on the database."""

import pytest
from sqlalchemy import select

from kiosk.core.errors import DomainError, Forbidden
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.whiteboards.models import Board, BoardMember
from kiosk.whiteboards.selectors import board_patients, boards_list
from kiosk.whiteboards.services import (
    ERR_ALREADY_ON,
    ERR_BOARD_TAKEN,
    ERR_DISCHARGED,
    ERR_WARD_NEEDED,
    board_create,
    board_delete,
    board_member_add,
    board_member_remove,
    board_update,
)

from ..factories import patient_make
from .helpers import audit_count, count, fresh


@pytest.fixture
def pending(clinic):
    """A hand-made list board, "Pending discharge"."""
    board = board_create(actor=clinic.user(6), name="Pending discharge", kind="list")
    db.session.commit()
    return board


def test_board_create_list_and_ward_boards(clinic):
    listing = board_create(actor=clinic.user(6), name="Pending discharge", kind="list")
    ward = board_create(actor=clinic.user(6), name="ICU second screen", kind="ward",
                        ward=str(clinic.ward.id), position="7")
    db.session.commit()
    assert (listing.kind, listing.ward_id) == ("list", None)
    assert listing.position == 1  # after the clinic's board at 0
    assert (ward.kind, ward.ward_id, ward.position) == ("ward", clinic.ward.id, 7)
    assert [b.name for b in boards_list()] == ["ICU board", "Pending discharge",
                                               "ICU second screen"]


@pytest.mark.parametrize(("data", "code", "field"), [
    ({"name": "X", "kind": "ward"}, "required", "ward"),
    ({"name": "X", "kind": "list", "ward": "ICU"}, "ward_on_list", "ward"),
    ({"name": "X", "kind": "wall"}, "bad_choice", "kind"),
    ({"name": "", "kind": "list"}, "required", "name"),
    ({"name": "icu BOARD", "kind": "list"}, "board_taken", "name"),
    ({"name": "X", "kind": "list", "position": "1000"}, "out_of_range", "position"),
    ({"name": "X", "kind": "ward", "ward": "Nowhere"}, "unknown_ward", "ward"),
])
def test_board_create_refuses_bad_input(clinic, data, code, field):
    boards, audits = count(Board), audit_count()
    with pytest.raises(DomainError) as exc:
        board_create(actor=clinic.user(6), **data)
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == (code, field)
    assert exc.value.message
    assert (count(Board), audit_count()) == (boards, audits)


def test_board_create_messages_say_why(clinic):
    with pytest.raises(DomainError) as exc:
        board_create(actor=clinic.user(6), name="X", kind="ward")
    assert exc.value.message == ERR_WARD_NEEDED
    db.session.rollback()
    with pytest.raises(DomainError) as exc:
        board_create(actor=clinic.user(6), name="ICU board", kind="list")
    assert exc.value.message == ERR_BOARD_TAKEN.format(name="ICU board")


def test_board_create_needs_level_4(clinic):
    with pytest.raises(Forbidden):
        board_create(actor=clinic.user(3), name="X", kind="list")
    db.session.rollback()
    assert count(Board) == 1


def test_board_rename_and_reorder(clinic, pending):
    board_update(board=pending, actor=clinic.user(6), name="Going home", position="0")
    board_update(board=clinic.board, actor=clinic.user(6), name="ICU board", position="5")
    db.session.commit()
    assert [b.name for b in boards_list()] == ["Going home", "ICU board"]


def test_board_rename_to_a_taken_name_is_refused(clinic, pending):
    with pytest.raises(DomainError) as exc:
        board_update(board=pending, actor=clinic.user(6), name="ICU board", position="3")
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == ("board_taken", "name")
    board = fresh(pending)
    assert (board.name, board.position) == ("Pending discharge", 1)


def test_board_delete_takes_its_members_along(clinic, pending):
    patient = patient_make(clinic)
    board_member_add(board=pending, actor=clinic.user(6), patient=patient)
    db.session.commit()
    board_delete(board=pending, actor=clinic.user(6))
    db.session.commit()
    assert count(Board) == 1
    assert count(BoardMember) == 0
    assert fresh(patient).status == "admitted"


def test_members_are_added_and_removed(clinic, pending):
    patient = patient_make(clinic)
    board_member_add(board=pending, actor=clinic.user(6), patient=patient)
    db.session.commit()
    assert board_patients(pending) == [patient]
    board_member_remove(board=pending, actor=clinic.user(6), patient=patient)
    db.session.commit()
    assert board_patients(pending) == []


def test_adding_a_discharged_patient_is_refused(clinic, pending):
    patient = patient_make(clinic, "Rex")
    patient_discharge(patient=patient, user=clinic.user(6))
    db.session.commit()
    audits = audit_count()
    with pytest.raises(DomainError) as exc:
        board_member_add(board=pending, actor=clinic.user(6), patient=patient)
    db.session.rollback()
    assert (exc.value.code, exc.value.field) == ("discharged", "patient")
    assert exc.value.message == ERR_DISCHARGED.format(name="Rex")
    assert (count(BoardMember), audit_count()) == (0, audits)


def test_adding_a_patient_twice_is_refused(clinic, pending):
    patient = patient_make(clinic, "Rex")
    board_member_add(board=pending, actor=clinic.user(6), patient=patient)
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        board_member_add(board=pending, actor=clinic.user(6), patient=patient)
    db.session.rollback()
    assert exc.value.message == ERR_ALREADY_ON.format(name="Rex", board="Pending discharge")
    assert count(BoardMember) == 1


def test_ward_boards_take_no_members(clinic):
    patient = patient_make(clinic, "Rex")
    with pytest.raises(DomainError) as exc:
        board_member_add(board=clinic.board, actor=clinic.user(6), patient=patient)
    db.session.rollback()
    assert exc.value.code == "not_a_list"
    assert "ICU board" in exc.value.message
    assert count(BoardMember) == 0


def test_removing_a_patient_not_on_the_board_is_refused(clinic, pending):
    patient = patient_make(clinic, "Rex")
    audits = audit_count()
    with pytest.raises(DomainError) as exc:
        board_member_remove(board=pending, actor=clinic.user(6), patient=patient)
    db.session.rollback()
    assert exc.value.code == "not_on_board"
    assert audit_count() == audits


def test_board_changes_poke_the_screens(clinic, pending):
    patient = patient_make(clinic)
    board_member_add(board=pending, actor=clinic.user(6), patient=patient)
    events = [e for e in db.session.info.get("pending_events", []) if e.name == "board.changed"]
    assert events[-1].data == {"board": pending.id}
    db.session.commit()
    assert db.session.scalar(select(BoardMember.patient_id)) == patient.id
