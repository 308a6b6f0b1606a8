"""Which rooms one commit's events poke (no server: the rooms and the queries behind them)."""

from sqlalchemy import event

from kiosk.clinic.models import Ward
from kiosk.core.events import DomainEvent
from kiosk.extensions import db
from kiosk.live.pokes import pokes_for
from kiosk.whiteboards.models import Board, BoardMember
from tests import factories


def rooms(events) -> list[tuple[str, str | None]]:
    return sorted((room, poke.get("patient")) for room, poke in pokes_for(events))


def test_a_moved_patient_pokes_both_ward_boards_its_lists_and_its_sheet(clinic):
    ward = Ward(name="Surgery", code="SUR")
    db.session.add(ward)
    db.session.flush()
    surgery = Board(name="Surgery board", kind="ward", ward_id=ward.id)
    pending = Board(name="Pending", kind="list")
    db.session.add_all([surgery, pending])
    db.session.commit()
    moved = factories.patient_make(clinic, "Biscuit", ward=ward)
    other = factories.patient_make(clinic, "Tara")
    db.session.add(BoardMember(board_id=pending.id, patient_id=moved.id))
    db.session.commit()
    events = [DomainEvent("patient.changed", {"patient": moved.uid, "ward_was": clinic.ward.id}),
              DomainEvent("task.changed", {"patient": other.uid, "task": "t"}),
              DomainEvent("note.added", {"patient": moved.uid})]
    assert rooms(events) == sorted([
        (f"board:{clinic.board.id}", moved.uid), (f"board:{surgery.id}", moved.uid),
        (f"board:{pending.id}", moved.uid), (f"sheet:{moved.uid}", moved.uid),
        (f"board:{clinic.board.id}", other.uid), (f"sheet:{other.uid}", other.uid)])


def test_the_boards_of_many_patients_take_one_query(clinic):
    uids = [factories.patient_make(clinic, f"P{n}").uid for n in range(12)]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        out = pokes_for([DomainEvent("task.changed", {"patient": uid, "task": "t"})
                         for uid in uids])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(statements) == 1  # one UNION for the ward boards, the lists and the pending boards
    assert len([room for room, _ in out if room.startswith("board:")]) == 12
