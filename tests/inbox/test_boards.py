"""Staff tasks on the boards: a chip on the patient's row ("Bloods 14:00", overdue marked),
the pending boards list a patient with a task overdue or due soon (joined with discharge's
labels), a change pokes the patient's boards, and the board's queries stay constant."""

from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event

from kiosk.extensions import db
from kiosk.inbox.selectors import tasks_by_patient
from kiosk.inbox.services import staff_task_cancel, staff_task_create
from kiosk.whiteboards.models import Board
from kiosk.whiteboards.selectors import board_grid, board_patients
from tests import factories

from .helpers import task_make


def row_of(grid, patient):
    """The patient's row of a grid."""
    return next(r for r in grid.rows if r.patient.id == patient.id)


def test_the_ward_board_shows_open_tasks_as_chips_overdue_marked(clinic, client, login,
                                                                 frozen_clock):
    patient = factories.patient_make(clinic, "Biscuit")
    task_make(key="a", title="Bloods", patient=patient, assignee_level=3,
              due_in=timedelta(hours=2))
    task_make(key="b", title="Call the owner back", patient=patient, assignee_level=3,
              due_in=-timedelta(minutes=10))
    cancelled = task_make(key="c", title="Weigh", patient=patient, assignee_level=3)
    staff_task_cancel(task=cancelled, reason="Not needed")
    db.session.commit()
    chips = row_of(board_grid(clinic.board), patient).tasks
    assert [(c.text, c.overdue) for c in chips] == [("Call the… 11:50", True),
                                                    ("Bloods 14:00", False)]
    assert chips[0].title == "Call the owner back, due 11:50"
    login(clinic.user(1))
    html = client.get(f"/boards/{clinic.board.id}").text
    assert '<span class="badge staff-task overdue" title="Call the owner back, due 11:50 ' \
           '(overdue)">Call the… 11:50<span class="sr-only"> overdue</span></span>' in html
    assert '<span class="badge staff-task" title="Bloods, due 14:00">Bloods 14:00</span>' in html
    row = client.get(f"/boards/{clinic.board.id}/rows/{patient.uid}",
                     headers={"HX-Request": "true"}).text
    assert "Bloods 14:00" in row


def test_the_pending_board_lists_patients_with_tasks_overdue_or_due_soon(clinic, client,
                                                                         login, frozen_clock):
    overdue = factories.patient_make(clinic, "Rex", cage="1")
    later = factories.patient_make(clinic, "Tom", cage="2")
    factories.patient_make(clinic, "Biscuit", cage="3")
    task_make(key="a", title="Bloods", patient=overdue, assignee_level=3,
              due_in=-timedelta(hours=1))
    task_make(key="b", title="Recheck", patient=later, assignee_level=3,
              due_in=timedelta(days=2))
    board = Board(name="Pending", kind="pending")
    db.session.add(board)
    db.session.commit()
    assert [p.name for p in board_patients(board)] == ["Rex"]
    assert board_grid(board).rows[0].pending == ["Task: Bloods due 11:00"]
    login(clinic.user(1))
    html = client.get(f"/boards/{board.id}").text
    assert "Task: Bloods due 11:00" in html and "Tom" not in html
    frozen_clock.advance(days=1, hours=13)  # Tom's task is now due within 12 hours
    assert [p.name for p in board_patients(board)] == ["Rex", "Tom"]


def test_pending_labels_of_discharge_and_the_inbox_are_joined(clinic, frozen_clock):
    from kiosk.anaesthesia.services import anaesthesia_start

    patient = factories.patient_make(clinic, "Rex")
    anaesthesia_start(patient=patient, user=clinic.user(3))
    task_make(title="Bloods", patient=patient, assignee_level=3, due_in=timedelta(hours=1))
    board = Board(name="Pending", kind="pending")
    db.session.add(board)
    db.session.commit()
    assert board_grid(board).rows[0].pending == ["anaesthesia open", "Task: Bloods due 13:00"]


def test_a_task_change_pokes_the_patients_boards(clinic, client, login, socketio_client,
                                                  frozen_clock):
    patient = factories.patient_make(clinic, "Rex")
    login(clinic.user(2))
    sio = socketio_client()
    sio.emit("join", {"rooms": [f"board:{clinic.board.id}"]}, callback=True)
    sio.get_received()
    staff_task_create(key="k", title="Bloods", due_at=frozen_clock.now, patient=patient,
                      assignee_level=3)
    db.session.commit()
    pokes = [evt["args"][0] for evt in sio.get_received() if evt["name"] == "poke"]
    assert [(p["board"], p["patient"]) for p in pokes] == [(clinic.board.id, patient.uid)]


def test_tasks_by_patient_is_one_query(clinic, frozen_clock):
    patients = [factories.patient_make(clinic, f"P{i}") for i in range(3)]
    for i, patient in enumerate(patients):
        task_make(key=f"late{i}", title="Later", patient=patient, assignee_level=1,
                  due_in=timedelta(hours=5))
        task_make(key=f"soon{i}", title="Sooner", patient=patient, assignee_level=1,
                  due_in=timedelta(hours=1))
    assert [p.id for p in patients]  # loaded: only the tasks are to count
    with counted() as statements:
        found = tasks_by_patient(patients)
    assert len(statements) == 1
    assert [t.title for t in found[patients[0].id]] == ["Sooner", "Later"]
    assert tasks_by_patient([]) == {}


def test_the_boards_queries_stay_constant_with_1_or_20_patients_with_tasks(clinic,
                                                                           frozen_clock):
    pending = Board(name="Pending", kind="pending")
    db.session.add(pending)
    db.session.commit()

    def queries_for(n):
        for i in range(n):
            patient = factories.patient_make(clinic, name=f"P{n}-{i}")
            factories.order_make(clinic, patient, every_hours=2)
            task_make(key=f"{n}-{i}", title="Bloods", patient=patient, assignee_level=3,
                      due_in=timedelta(hours=1))
        counts = []
        for board_id in (clinic.board.id, pending.id):
            db.session.expire_all()
            with counted() as statements:
                grid = board_grid(db.session.get(Board, board_id))
            assert all(row.tasks for row in grid.rows)
            counts.append(len(statements))
        return counts

    one = queries_for(1)
    assert one == queries_for(20)
    assert one[0] <= 7  # the ward board's six, and one for every patient's staff tasks


@contextmanager
def counted():
    """The SQL statements run inside the block."""
    statements = []

    def listen(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
