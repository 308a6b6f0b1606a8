"""The ward whiteboard: colours by state, counts per cell, and a constant number of queries."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from kiosk.extensions import db
from kiosk.treatments.services import order_stop, task_complete, task_skip
from kiosk.whiteboards.models import Board, BoardMember
from kiosk.whiteboards.selectors import board_grid
from tests import factories

NOW = datetime(2026, 11, 22, 10, 7, tzinfo=UTC)


def test_cells_show_each_state(clinic):
    patient = factories.patient_make(clinic, alerts=["bites"])
    start = NOW - timedelta(hours=2, minutes=7)  # 08:00
    order = factories.order_make(clinic, patient, now=start, start=start, every_hours=1)
    tasks = sorted(order_tasks(order), key=lambda t: t.due_at)
    task_complete(task=tasks[0], user=clinic.user(1), now=start)           # 08:00 done
    task_skip(task=tasks[1], user=clinic.user(1), reason="asleep")         # 09:00 skipped
    db.session.commit()
    grid = board_grid(clinic.board, now=NOW)
    assert grid.hours[0] == start and grid.current_hour == 2
    cells = grid.rows[0].cells
    assert dict(cells[0].chips) == {"done": 1}
    assert dict(cells[1].chips) == {"skipped": 1}
    assert dict(cells[2].chips) == {"due": 1}          # 10:00, within ±15 min
    assert dict(cells[3].chips) == {"scheduled": 1}    # 11:00
    later = board_grid(clinic.board, now=NOW + timedelta(minutes=20))
    assert dict(later.rows[0].cells[2].chips) == {"overdue": 1}
    order_stop(order=order, user=clinic.user(4), at=NOW)
    db.session.commit()
    assert dict(board_grid(clinic.board, now=NOW).rows[0].cells[3].chips) == {"stopped": 1}


def test_yesterday_badge_counts_undone_tasks(clinic):
    patient = factories.patient_make(clinic)
    start = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    factories.order_make(clinic, patient, now=start, start=start, every_hours=6)
    grid = board_grid(clinic.board, now=NOW)
    assert grid.rows[0].undone_yesterday == 3   # 06, 12, 18 on the 21st


def test_list_board_and_discharged_patients(clinic):
    a = factories.patient_make(clinic, name="A")
    b = factories.patient_make(clinic, name="B")
    board = Board(name="Pending discharge", kind="list")
    db.session.add(board)
    db.session.flush()
    db.session.add(BoardMember(board_id=board.id, patient_id=b.id))
    db.session.commit()
    assert [r.patient.name for r in board_grid(board, now=NOW).rows] == ["B"]
    assert {r.patient.name for r in board_grid(clinic.board, now=NOW).rows} == {"A", "B"}
    from kiosk.discharge.services import patient_discharge

    patient_discharge(patient=a, user=clinic.user(4))
    db.session.commit()
    assert [r.patient.name for r in board_grid(clinic.board, now=NOW).rows] == ["B"]


def test_query_count_does_not_grow_with_patients(clinic):
    def queries_for(n):
        for i in range(n):
            patient = factories.patient_make(clinic, name=f"P{n}-{i}")
            factories.order_make(clinic, patient, now=NOW, every_hours=2)
        db.session.expire_all()
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            board_grid(db.session.get(Board, clinic.board.id), now=NOW)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    # settings, patients, cells, yesterday's badge, and the two of which tablet carries whom
    assert queries_for(2) == queries_for(12) <= 7


def test_board_page_and_row_partial(clinic, client, login):
    patient = factories.patient_make(clinic, name="<img src=x onerror=alert(1)>",
                                     alerts=["dnr"])
    factories.order_make(clinic, patient)
    login(clinic.user(1))
    response = client.get(f"/boards/{clinic.board.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "DNR" in html and 'hx-trigger="every 60s"' in html
    partial = client.get(f"/boards/{clinic.board.id}", headers={"HX-Request": "true"})
    assert partial.get_data(as_text=True).lstrip().startswith('<section id="board-grid"')
    row = client.get(f"/boards/{clinic.board.id}/rows/{patient.uid}",
                     headers={"HX-Request": "true"}).get_data(as_text=True)
    assert row.lstrip().startswith(f'<tr id="row-{patient.uid}"')
    assert client.get("/boards/999").status_code == 404
    assert client.get("/boards/").status_code == 200


def order_tasks(order):
    from sqlalchemy import select

    from kiosk.treatments.models import Task

    return db.session.scalars(select(Task).where(Task.order_id == order.id)).all()
